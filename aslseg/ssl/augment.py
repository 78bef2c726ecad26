"""Augmentation of labeled batches with MONAI transforms: small rotations and scalings, intensity jitter.

No flips by default: the liver sits on the patient's right, and where a tumor can be is part of what the
network should learn.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandScaleIntensityd,
)


def build_augmentation(rotate_deg: float, scale: float, intensity: float, flip: bool, seed: int) -> Compose:
    transforms = [
        RandAffined(
            keys=["image", "label"],
            prob=0.7,
            rotate_range=np.deg2rad(rotate_deg),
            scale_range=(scale, scale),
            mode=("bilinear", "nearest"),
            padding_mode="zeros",
        ),
        RandScaleIntensityd(keys="image", factors=intensity, prob=0.5),
        RandAdjustContrastd(keys="image", gamma=(1 - intensity * 2, 1 + intensity * 2), prob=0.3),
        RandGaussianNoised(keys="image", std=intensity / 3, prob=0.3),
    ]
    if flip:
        transforms.insert(0, RandFlipd(keys=["image", "label"], spatial_axis=1, prob=0.5))
    compose = Compose(transforms)
    compose.set_random_state(seed=seed)
    return compose


def augment_batch(images: np.ndarray, labels: np.ndarray, augmentation: Compose) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) image and label arrays -> augmented (B, 1, H, W) float image and long label tensors."""
    out_images, out_labels = [], []
    for image, label in zip(images, labels):
        sample = augmentation({"image": image[None].astype(np.float32), "label": label[None].astype(np.float32)})
        out_images.append(torch.as_tensor(sample["image"]).float())
        out_labels.append(torch.as_tensor(sample["label"]).round().long())
    return torch.stack(out_images), torch.stack(out_labels)
