"""Which torchvision/torchaudio/torchcodec builds are hidden beside which torch."""

import sys

import pytest

from moe_lsp.inference import torch_extras


@pytest.mark.parametrize(
    ("torch_version", "extras", "hidden"),
    [
        # PyPI's builds beside the CPU torch from PyTorch's index: all hidden.
        (
            "2.13.0+cpu",
            {"torchvision": "0.28.0", "torchaudio": "2.11.1", "torchcodec": "0.17.0"},
            ["torchvision", "torchaudio", "torchcodec"],
        ),
        # CPU builds beside the CPU torch load.
        ("2.13.0+cpu", {"torchvision": "0.28.0+cpu", "torchaudio": "2.13.0+CPU"}, []),
        ("2.13.0+cpu", {"torchvision": "0.28.0+cpu", "torchaudio": "2.11.1"}, ["torchaudio"]),
        # PyPI's CUDA torch with PyPI's extras: nothing hidden (the gpu extra).
        ("2.13.0", {"torchvision": "0.28.0"}, []),
        ("2.13.0+cu128", {"torchvision": "0.28.0"}, []),
        # No torch, no extras.
        (None, {"torchvision": "0.28.0"}, []),
        ("2.13.0+cpu", {}, []),
    ],
)
def test_mismatched(torch_version, extras, hidden):
    assert torch_extras.mismatched(torch_version, extras) == hidden


@pytest.mark.parametrize(
    ("version", "label"),
    [("2.13.0+cpu", "cpu"), ("0.28.0", ""), ("2.13.0+cu128", "cu128"), ("1.0+CPU", "cpu")],
)
def test_local_label(version, label):
    assert torch_extras.local_label(version) == label


def test_hide_mismatched_hides_only_what_is_installed_and_mismatched(monkeypatch):
    versions = {"torch": "2.13.0+cpu", "torchvision": "0.28.0", "torchaudio": "2.13.0+cpu"}
    # find_spec must see them installed: stand-in modules' specs are not needed, so fake it.
    monkeypatch.setattr(torch_extras.importlib.util, "find_spec", lambda name: object())
    for name in torch_extras.EXTRAS:
        monkeypatch.delitem(sys.modules, name, raising=False)
    hidden = torch_extras.hide_mismatched(versions.get)
    assert hidden == ["torchvision 0.28.0"]
    assert sys.modules["torchvision"] is None
    assert "torchaudio" not in sys.modules
    assert "torchcodec" not in sys.modules
    # A second call changes nothing and reports nothing new.
    assert torch_extras.hide_mismatched(versions.get) == []
    line = torch_extras.hint(hidden, "2.13.0+cpu")
    assert line == (
        "moe-lsp: not using torchvision 0.28.0 (not built for torch 2.13.0+cpu); "
        "`pip uninstall torchvision` removes them"
    )
