"""The `moe-lsp` command: serve, connect, model prepare/path, and the `complete` demo."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from moe_lsp.inference import torch_extras

from . import experts_cli
from .cli_shared import CONNECT_IDLE_SECONDS, add_shared_flags, cmd_connect
from .orphans import exit_with_parent, is_spawned_child
from .settings import ServerSettings, SettingsError

if is_spawned_child():
    # This module is imported again in each process vLLM spawns (as, or by, the parent's main
    # module): such a process ends when the server that started it is gone.
    exit_with_parent()
    torch_extras.hide_mismatched()
elif hidden_extras := torch_extras.hide_mismatched():
    # PyPI's torchvision/torchaudio/torchcodec beside a CPU torch: hidden before vLLM loads.
    print(torch_extras.hint(hidden_extras), file=sys.stderr)


ENGINE_URL_ENV = "MOE_LSP_ENGINE_URL"
ENGINE_TOKENIZER_ENV = "MOE_LSP_ENGINE_TOKENIZER"
REMOTE_FLAGS = {
    # flag: (engine setting, metavar, environment default, help)
    "engine_url": (
        "url",
        "URL",
        ENGINE_URL_ENV,
        "use the OpenAI-compatible server at URL instead of an in-process engine",
    ),
    "engine_tokenizer": (
        "tokenizer",
        "DIR",
        ENGINE_TOKENIZER_ENV,
        "local folder with the served model's tokenizer.json (default: the server's /tokenize)",
    ),
    "engine_api_key_file": (
        "api_key_file",
        "FILE",
        None,
        "file holding the server's API key (default: $MOE_LSP_ENGINE_API_KEY)",
    ),
}
"""Command-line flags of the remote engine and the engine settings they set."""


def _json_object(text: str) -> dict[str, object]:
    """A JSON object given on the command line (argparse reports the error)."""
    import json

    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err})") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"method": "ngram"}\'')
    return value


def _engine_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--model", help="model folder or hub id (default: the prepared default model)")
    g.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float16", "float32"],
        help="default: bfloat16 on CPU, auto (the checkpoint's) on GPU",
    )
    g.add_argument("--max-model-len", type=int, help="longest prompt + completion, tokens")
    g.add_argument(
        "--kv-cache-gib",
        type=float,
        help="KV cache memory in GiB (default: 1 on CPU; on GPU, what --gpu-memory-utilization "
        "leaves)",
    )
    g.add_argument("--max-num-seqs", type=int, help="most requests batched together (default 16)")
    g.add_argument(
        "--enforce-eager",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="skip CUDA graphs / torch.compile (default: on for CPU, off for GPU)",
    )
    g.add_argument(
        "--speculative-config",
        type=_json_object,
        metavar="JSON",
        help='vLLM speculative decoding, e.g. \'{"method": "nemotron_h_mtp", '
        '"num_speculative_tokens": 3}\'',
    )
    g.add_argument("--block-size", type=int, help="KV cache block size (default 32 on CPU)")
    g.add_argument("--tensor-parallel-size", type=int)
    g.add_argument("--pipeline-parallel-size", type=int)
    g.add_argument("--data-parallel-size", type=int)
    g.add_argument("--enable-expert-parallel", action="store_true", default=None)
    g.add_argument(
        "--distributed-executor-backend",
        choices=["mp", "ray", "uni"],
        help="'ray' to spread the engine over several nodes of a Ray cluster",
    )
    g.add_argument(
        "--gpu-memory-utilization", type=float, help="share of each GPU vLLM may take (0-1]"
    )
    g.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help="let the model folder run its own code (only for models you trust)",
    )
    r = p.add_argument_group("remote engine (an OpenAI-compatible server such as `vllm serve`)")
    for flag, (_, metavar, env, text) in REMOTE_FLAGS.items():
        default = (os.environ.get(env) or None) if env else None
        hint = f" (${env} if set)" if env else ""
        r.add_argument(
            "--" + flag.replace("_", "-"), default=default, metavar=metavar, help=text + hint
        )


def _settings_from(args: argparse.Namespace) -> ServerSettings:
    """The config file's settings (its problems kept in `args.config_problems`), then the
    command line's engine flags and switches over them."""
    from .config_file import load

    file = load()
    args.config_file, args.config_problems = file, file.problems
    settings = file.settings
    engine = flag_engine(args)
    if engine:
        settings = settings.merged({"engine": engine})
    if getattr(args, "log_prompts", False):
        settings = settings.merged({"logPrompts": True})
    return settings


def flag_engine(args: argparse.Namespace) -> dict[str, object]:
    """The engine settings the command line (and its environment defaults) set."""
    engine = {
        k: v
        for k in (
            "model",
            "dtype",
            "max_model_len",
            "kv_cache_gib",
            "max_num_seqs",
            "enforce_eager",
            "speculative_config",
            "block_size",
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "data_parallel_size",
            "enable_expert_parallel",
            "distributed_executor_backend",
            "gpu_memory_utilization",
            "trust_remote_code",
        )
        if (v := getattr(args, k, None)) is not None
    }
    engine.update(
        {spec[0]: v for flag, spec in REMOTE_FLAGS.items() if (v := getattr(args, flag, None))}
    )
    return engine


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the language server: on stdio (one editor), or shared (`--listen`, `--tcp`)."""
    from .logs import protect_stdout, setup_logging

    try:
        settings = _settings_from(args)
    except SettingsError as err:
        print(f"moe-lsp: {err}", file=sys.stderr)
        return 2
    level, log_file, default_file = log_choice(args)
    if args.tcp or args.listen:
        from .cli_shared import serve_shared

        setup_logging(level, log_file, default_file)
        _log_config_problems(args)
        try:
            token = _read_token(args.token_file)
        except OSError as err:
            print(f"moe-lsp: cannot read the token file: {err}", file=sys.stderr)
            return 2
        return serve_shared(args, settings, token)
    lsp_out = protect_stdout()
    setup_logging(level, log_file, default_file)
    _log_config_problems(args)
    from .server import create_server
    from .transport import serve_stdio

    server = create_server(settings)
    server.startup_warnings = list(getattr(args, "config_problems", []))

    def _exit_on_signal(signum: int, frame: object) -> None:
        # Stop the engine, then leave at once (the event loop may be busy in a handler).
        logging.getLogger(__name__).info("signal %d: stopping the engine", signum)
        try:
            server.host.shutdown_blocking()
        finally:
            logging.shutdown()
            os._exit(1)

    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        serve_stdio(server, sys.stdin.buffer, lsp_out)
    finally:
        server.host.shutdown_blocking()  # within 10 s, every engine process ended
    code = 0 if server.protocol._shutdown else 1
    # Leave now: interpreter exit would still wait seconds for threads and vLLM's exit hooks.
    logging.shutdown()
    os._exit(code)


def log_choice(args: argparse.Namespace) -> tuple[str, str | None, Path | None]:
    """The log level, the --log-file (flag, else the config file's) and the default file."""
    from .config_file import default_log_file

    options = args.config_file.options if getattr(args, "config_file", None) else None
    level = args.log_level or (options.log_level if options else "") or "INFO"
    log_file = args.log_file or (options.log_file if options else "") or None
    return level, log_file, default_log_file()


def _log_config_problems(args: argparse.Namespace) -> None:
    for problem in getattr(args, "config_problems", []):
        logging.getLogger(__name__).warning("%s", problem)


def _read_token(path: str | None) -> str | None:
    """The shared TCP token from --token-file or $MOE_LSP_TOKEN (None: no token required)."""
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return os.environ.get("MOE_LSP_TOKEN") or None


def cmd_model_prepare(args: argparse.Namespace) -> int:
    """Prepare the default MoE model in the cache (once)."""
    from moe_lsp.inference.errors import InferenceError
    from moe_lsp.inference.model_store import ModelPrepareError, prepare_default_model

    try:
        path = prepare_default_model(
            Path(args.dir) if args.dir else None, experts=args.experts, force=args.force
        )
    except (InferenceError, ModelPrepareError) as err:
        print(f"moe-lsp: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


def cmd_model_path(args: argparse.Namespace) -> int:
    """Print where the default model lives and whether it is prepared."""
    from moe_lsp.inference.model_store import default_model_dir, is_prepared

    path = default_model_dir()
    print(path)
    return 0 if is_prepared(path) else 1


def cmd_complete(args: argparse.Namespace) -> int:
    """Start the server as a subprocess, ask for a completion like an editor, print it."""
    from .demo import run_demo

    # The demo starts `moe-lsp serve`, which reads these variables as its flags' defaults; the
    # API key file travels as the key's own variable.
    for flag, (_, _, env, _) in REMOTE_FLAGS.items():
        if env and (value := getattr(args, flag, None)):
            os.environ[env] = value
    if path := getattr(args, "engine_api_key_file", None):
        from moe_lsp.inference.errors import EngineConfigError
        from moe_lsp.inference.openai_engine import API_KEY_ENV, read_api_key

        try:
            os.environ[API_KEY_ENV] = read_api_key(path) or ""
        except EngineConfigError as err:
            print(f"moe-lsp: {err}", file=sys.stderr)
            return 2
    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `moe-lsp`."""
    parser = argparse.ArgumentParser(
        prog="moe-lsp", description="AI code completion language server on a local MoE model."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument("--stdio", action="store_true", help="talk LSP on stdio (the default)")
    serve.add_argument(
        "--tcp", type=int, metavar="PORT", help="shared server on 127.0.0.1:PORT (needs a token)"
    )
    serve.add_argument(
        "--token-file",
        help="TCP clients must send this file's token as initializationOptions.token "
        "(default: $MOE_LSP_TOKEN if set)",
    )
    serve.add_argument("--log-level", help="DEBUG, INFO (default), WARNING or ERROR")
    serve.add_argument(
        "--log-file",
        help="write the log here instead of stderr and the default file, "
        "$XDG_STATE_HOME/moe-lsp/server.log (~/.local/state/moe-lsp/server.log); '-': stderr only",
    )
    serve.add_argument(
        "--log-prompts", action="store_true", help="log prompt and completion text (debugging)"
    )
    _engine_flags(serve)
    add_shared_flags(serve)
    serve.set_defaults(func=cmd_serve)

    conn = sub.add_parser(
        "connect",
        help="editors run this: forward stdio to the shared server, starting it when needed",
    )
    conn.add_argument("--socket", help="the server's unix socket (default: the user's own)")
    conn.add_argument(
        "--idle-exit",
        type=float,
        default=CONNECT_IDLE_SECONDS,
        metavar="SECONDS",
        help="a server this command starts exits after this long with no session "
        f"(default {CONNECT_IDLE_SECONDS:.0f})",
    )
    conn.add_argument("--log-level", default="INFO", help="log level of a server it starts")
    team = conn.add_argument_group("a team's server (instead of your own)")
    team.add_argument("--remote", metavar="HOST:PORT", help="connect to a shared server over TCP")
    team.add_argument("--tls", action="store_true", help="speak TLS to it (needed off loopback)")
    team.add_argument("--tls-ca", metavar="FILE", help="CA certificate to trust (default: system)")
    team.add_argument(
        "--token-file", help="your token (default: $MOE_LSP_TOKEN); sent with initialize"
    )
    _engine_flags(conn)
    conn.set_defaults(func=cmd_connect, parser=conn)

    from .cli_config import add_config_command

    add_config_command(sub, _engine_flags)

    model = sub.add_parser("model", help="manage the default model")
    msub = model.add_subparsers(dest="model_command", required=True)
    prep = msub.add_parser("prepare", help="build the default MoE model in the cache")
    prep.add_argument("--dir", help="target folder (default: the user cache dir)")
    prep.add_argument("--experts", type=int, default=4, help="experts per layer (default 4)")
    prep.add_argument("--force", action="store_true", help="rebuild even if prepared")
    prep.set_defaults(func=cmd_model_prepare)
    path = msub.add_parser("path", help="print the default model folder")
    path.set_defaults(func=cmd_model_path)

    comp = sub.add_parser("complete", help="demo: print the completion at FILE:LINE:COLUMN")
    comp.add_argument("file", type=Path)
    comp.add_argument("--line", type=int, required=True, help="1-based line")
    comp.add_argument("--column", type=int, required=True, help="1-based column (characters)")
    comp.add_argument("--language", help="LSP languageId (default: from the file extension)")
    comp.add_argument("--server-log", help="write the server's log here (default: discard)")
    comp.add_argument("--timeout", type=float, default=900, help="seconds to wait for the model")
    comp.add_argument(
        "--log-prompts", action="store_true", help="server logs prompt and completion text"
    )
    _engine_flags(comp)
    comp.set_defaults(func=cmd_complete)
    experts_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `moe-lsp` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
