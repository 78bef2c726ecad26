"""SS(.): a 2D MONAI BasicUNet, 1 input channel (windowed CT), 2 classes (rest, tumor)."""

from __future__ import annotations

import numpy as np
import torch
from monai.networks.nets import BasicUNet


def build_network(features: list[int] | tuple[int, ...]) -> BasicUNet:
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=tuple(features))


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Tumor probability (softmax channel 1) for a (N, H, W) stack, as float32 (N, H, W)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.as_tensor(images[start : start + batch_size], dtype=torch.float32, device=device)[:, None]
        out.append(torch.softmax(model(batch), dim=1)[:, 1].cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[1:], dtype=np.float32)


def default_device() -> str:
    """The GPU when the job was given one (a GPU config requests it), else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"
