"""The 2D MONAI BasicUNet behind SS(.) (1 input channel: windowed CT), AN(.) (CT plus prior channels such
as SAM's mask) and the liver model, with 2 classes (rest, tumor or liver)."""

from __future__ import annotations

import numpy as np
import torch
from monai.networks.nets import BasicUNet


class SegmentationUNet(BasicUNet):
    """BasicUNet that can run its forward pass under bfloat16 autocast (`bf16`): convolutions in bf16, weights,
    gradients, optimizer state and the returned logits in float32, so losses and thresholds see float32. The
    flag is not part of the state dict: a checkpoint loads either way."""

    def __init__(self, features: tuple[int, ...], in_channels: int, bf16: bool):
        super().__init__(spatial_dims=2, in_channels=in_channels, out_channels=2, features=features)
        if not isinstance(bf16, bool):  # "auto" is resolved before a network is built (aslseg/precision.py)
            raise TypeError(f"bf16 must be True or False here; got {bf16!r}")
        self.bf16 = bf16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = super().forward(x)
        return logits.float()


def build_network(features: list[int] | tuple[int, ...], in_channels: int = 1, bf16: bool = False) -> SegmentationUNet:
    return SegmentationUNet(tuple(features), in_channels, bf16)


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, images: np.ndarray, batch_size: int = 16, region: np.ndarray | None = None
) -> np.ndarray:
    """Tumor probability (softmax channel 1) for a (N, H, W) stack, or (N, C, H, W) for a network with C input
    channels, as float32 (N, H, W). With `region` (N, H, W), the probability outside it is 0: SS(.) segments
    tumor within the known liver region (liver incl. tumor, what a liver segmenter outputs; the same region
    selects the slices and the crop), as cascaded liver-tumor methods do."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.as_tensor(images[start : start + batch_size], dtype=torch.float32, device=device)
        batch = batch[:, None] if batch.ndim == 3 else batch
        out.append(torch.softmax(model(batch), dim=1)[:, 1].cpu().numpy())
    model.train(was_training)
    probability = np.concatenate(out) if out else np.zeros((0,) + images.shape[-2:], dtype=np.float32)
    if region is not None:
        if np.shape(region) != probability.shape:
            raise ValueError(f"region has shape {np.shape(region)}, the probabilities {probability.shape}")
        probability = np.where(np.asarray(region) > 0, probability, np.float32(0.0))
    return probability
