"""The shared-server side of the command line: `serve --listen …` and `connect`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import ServerSettings

if TYPE_CHECKING:
    import ssl

    from .protocol import Authenticator

log = logging.getLogger(__name__)

CONNECT_IDLE_SECONDS = 600.0
"""Idle time after which a server that `connect` started exits (no session; GPU freed)."""


def add_shared_flags(p: argparse.ArgumentParser) -> None:
    """The flags of a shared server (on `serve`)."""
    g = p.add_argument_group("shared server (one engine for many editors)")
    g.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="serve many clients at unix:PATH or tcp:HOST:PORT (repeatable); TCP needs a token",
    )
    g.add_argument(
        "--tokens-file",
        help="per-user tokens, one `USER TOKEN` a line (mode 600); required off loopback",
    )
    g.add_argument("--tls-cert", help="TLS certificate chain (PEM); required off loopback")
    g.add_argument("--tls-key", help="TLS private key (PEM)")
    g.add_argument(
        "--idle-exit",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="exit after this long with no session (default 0: never)",
    )
    g.add_argument("--max-connections", type=int, default=64, help="connections at once")
    g.add_argument(
        "--max-inflight", type=int, default=8, help="completion requests at once per session"
    )
    g.add_argument(
        "--login-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a connection must initialize within this long",
    )


def serve_shared(args: argparse.Namespace, settings: ServerSettings, token: str | None) -> int:
    """Run the shared server until it is stopped, or idle past --idle-exit."""
    from .listen import Limits, ListenError, Security, SharedServer, parse_endpoint
    from .service import Service

    try:
        endpoints = [parse_endpoint(text) for text in args.listen]
        if args.tcp:
            endpoints.append(parse_endpoint(f"tcp:127.0.0.1:{args.tcp}"))
        limits = Limits(
            max_connections=_positive(args.max_connections, "--max-connections"),
            max_inflight=_positive(args.max_inflight, "--max-inflight"),
            login_seconds=_positive(args.login_timeout, "--login-timeout"),
            idle_exit_seconds=max(0.0, args.idle_exit),
        )
        security = Security(authenticate=_authenticator(args, token), tls=_tls(args))
        service = Service()
        server = SharedServer(service, settings, endpoints, limits, security)
    except (ListenError, OSError) as err:
        print(f"moe-lsp: {err}", file=sys.stderr)
        return 2

    def _stop(signum: int, frame: object) -> None:
        log.info("signal %d: stopping", signum)
        loop.call_soon_threadsafe(server.stop)

    loop = asyncio.new_event_loop()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        loop.run_until_complete(server.run())
    except ListenError as err:
        print(f"moe-lsp: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"moe-lsp: cannot listen: {err}", file=sys.stderr)
        return 2
    finally:
        service.host.shutdown_blocking()
        loop.close()
    return 0


def _positive(value: float, flag: str) -> float:
    from .listen import ListenError

    if not value > 0:
        raise ListenError(f"{flag} must be above 0, not {value}.")
    return value


def _authenticator(args: argparse.Namespace, token: str | None) -> Authenticator | None:
    from .listen import read_tokens_file
    from .protocol import single_token

    if args.tokens_file:
        return read_tokens_file(Path(args.tokens_file))
    return single_token(token) if token else None


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    from .listen import ListenError, tls_context

    if bool(args.tls_cert) != bool(args.tls_key):
        raise ListenError("--tls-cert and --tls-key go together.")
    return tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None


def connect_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The `serve` flags a `connect` passes to the server it starts (engine flags, idle time)."""
    out = ["--idle-exit", str(args.idle_exit), "--log-level", args.log_level]
    for group in parser._action_groups:
        if not group.title or not group.title.startswith(("engine", "remote engine")):
            continue
        for action in group._group_actions:
            value = getattr(args, action.dest, None)
            if value is None or value is False:
                continue
            flag = action.option_strings[0]
            out += [flag] if value is True else [flag, str(value)]
    return out


def cmd_connect(args: argparse.Namespace) -> int:
    """Forward stdio to the user's shared server (started if none answers), or to a team's."""
    from .connect import run, run_remote

    if args.remote:
        ignored = [a for a in connect_args(args.parser, args)[4:] if a.startswith("--")]
        if ignored:
            print(
                f"moe-lsp connect: {', '.join(ignored)} ignored: a team server's engine is "
                "set on its own command line",
                file=sys.stderr,
            )
        token = None
        if args.token_file:
            try:
                token = Path(args.token_file).read_text(encoding="utf-8").strip() or None
            except OSError as err:
                print(f"moe-lsp connect: cannot read the token file: {err}", file=sys.stderr)
                return 1
        token = token or os.environ.get("MOE_LSP_TOKEN") or None
        return run_remote(args.remote, tls=args.tls, ca_file=args.tls_ca, token=token)

    serve_args = connect_args(args.parser, args)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run(args.socket, serve_args)
