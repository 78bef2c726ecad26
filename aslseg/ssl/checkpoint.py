"""SS(.) checkpoints: weights plus the settings they were trained with, loadable with weights_only=True."""

from __future__ import annotations

from pathlib import Path

import torch

from aslseg.io import atomic_path
from aslseg.precision import resolve_bf16
from aslseg.seg2d.network import build_network


def save_checkpoint(path: str | Path, state_dict: dict, ssl_config: dict, **info) -> None:
    """Tensors and plain values only, so that torch.load(weights_only=True) can read it back."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state_dict, "ssl": ssl_config, **info}, tmp)


def load_weights(path: str | Path) -> dict:
    """The state dict of a checkpoint, on the CPU (to start another training from it)."""
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def load_model(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The model and the checkpoint (its `ssl` settings complete: checkpoints from before ssl.bf16 existed
    trained in float32). The model predicts in its ssl.bf16 setting resolved for `device` ("auto" picks anew
    on the machine that predicts), which `checkpoint["inference_precision"]` tells; `checkpoint["precision"]`
    is what it was trained in."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    checkpoint["ssl"] = {"bf16": False, **checkpoint["ssl"]}
    checkpoint["inference_precision"] = resolve_bf16(checkpoint["ssl"]["bf16"], device)
    model = build_network(checkpoint["ssl"]["features"], bf16=checkpoint["inference_precision"].bf16).to(device)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, checkpoint
