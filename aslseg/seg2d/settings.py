"""The settings every 2D segmentation training here reads (SS(.), AN(.), the liver model): one definition,
which each stage's settings extend with its own keys. Torch-free: the Snakefile imports SS(.)'s settings at
parse time to name its runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aslseg.precision import Precision, resolve_bf16


@dataclass(frozen=True)
class LoopSettings:
    """A training run of the seg2d U-Net: its size, optimizer steps, validation and augmentation."""

    iterations: int  # optimizer steps (AdamW, learning rate decayed polynomially to 0)
    batch_size: int
    lr: float
    weight_decay: float
    features: tuple[int, ...]  # BasicUNet feature sizes
    val_every: int  # steps between validations; the weights best on val are kept
    rotate_deg: float  # augmentation: rotation range
    scale: float  # augmentation: scaling range
    intensity: float  # augmentation: intensity jitter strength
    bf16: bool | str  # bfloat16 autocast: True, False or "auto" until `on_device` resolves it (aslseg/precision.py)

    def on_device(self, device):
        """These settings with `bf16` resolved for `device`, and the precision chosen (with its reason)."""
        precision: Precision = resolve_bf16(self.bf16, device)
        return dataclasses.replace(self, bf16=precision.bf16), precision
