"""The ANSI → cells reading behind the README's Neovim screenshot, and which plots are copied."""

import os

import pytest

from tests.bench.pictures import Style, apply_sgr, copy_plots, newest_plot, parse_ansi, xterm_color


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([0], Style()),
        ([], Style()),
        ([38, 2, 1, 2, 3], Style(fg=(1, 2, 3))),
        ([48, 2, 10, 20, 30], Style(bg=(10, 20, 30))),
        ([38, 5, 196], Style(fg=(255, 0, 0))),
        ([38, 5, 244], Style(fg=(128, 128, 128))),
        ([31], Style(fg=(205, 0, 0))),
        ([92], Style(fg=(0, 255, 0))),
        ([1, 3], Style(bold=True, italic=True)),
        ([7], Style(reverse=True)),
        ([38, 2, 1, 2, 3, 1], Style(fg=(1, 2, 3), bold=True)),
    ],
)
def test_apply_sgr_from_default(params, expected):
    assert apply_sgr(Style(), params) == expected


@pytest.mark.parametrize(
    ("start", "params", "expected"),
    [
        (Style(fg=(1, 1, 1), bold=True), [39], Style(bold=True)),
        (Style(fg=(1, 1, 1), bg=(2, 2, 2)), [49], Style(fg=(1, 1, 1))),
        (Style(bold=True, italic=True), [22], Style(italic=True)),
        (Style(fg=(1, 1, 1), bold=True), [0], Style()),
    ],
)
def test_apply_sgr_resets(start, params, expected):
    assert apply_sgr(start, params) == expected


@pytest.mark.parametrize(
    ("n", "rgb"),
    [
        (0, (0, 0, 0)),
        (15, (255, 255, 255)),
        (16, (0, 0, 0)),
        (231, (255, 255, 255)),
        (232, (8, 8, 8)),
    ],
)
def test_xterm_color(n, rgb):
    assert xterm_color(n) == rgb


def test_parse_ansi_keeps_style_across_lines_and_drops_other_escapes():
    grey = (128, 128, 128)
    text = "ab\x1b[38;2;128;128;128mcd\n\x1b[?25le\x1b[0mf\n\n"
    rows = parse_ansi(text)
    assert [[ch for ch, _ in row] for row in rows] == [list("abcd"), list("ef")]
    assert [st.fg for _, st in rows[0]] == [None, None, grey, grey]
    assert [st.fg for _, st in rows[1]] == [grey, None]


def test_newest_plot_skips_smoke_runs_and_other_benches(tmp_path):
    files = [
        ("eval_next_edit-20261130-1.png", 1),
        ("eval_next_edit-20261130-2.png", 2),
        ("eval_next_edit-smoke-20261130-3.png", 3),
        ("typing.png", 4),
        ("typing-smoke.png", 5),
        ("typing-peers.png", 6),
    ]
    for name, mtime in files:
        (tmp_path / name).write_bytes(name.encode())
        os.utime(tmp_path / name, (mtime, mtime))
    assert (
        newest_plot("eval_next_edit-*.png", tmp_path) == tmp_path / "eval_next_edit-20261130-2.png"
    )
    docs = tmp_path / "docs"
    copied = copy_plots(tmp_path, docs)
    assert copied["eval-next-edit.png"] == tmp_path / "eval_next_edit-20261130-2.png"
    assert (docs / "eval-next-edit.png").read_bytes() == b"eval_next_edit-20261130-2.png"
    # the typing replay's plot is not the peers' one, newer as that is
    assert (docs / "typing.png").read_bytes() == b"typing.png"
    assert (docs / "typing-peers.png").read_bytes() == b"typing-peers.png"
    assert copied["latency.png"] is None and not (docs / "latency.png").exists()
