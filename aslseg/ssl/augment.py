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


def build_augmentation(
    rotate_deg: float, scale: float, intensity: float, flip: bool, seed: int, with_prior: bool = False
) -> Compose:
    """`with_prior`: samples also carry "prior" channels (AN's pseudo-label inputs), moved with the image and
    label but left out of the intensity changes."""
    spatial = ["image", "label"] + (["prior"] if with_prior else [])
    transforms = [
        RandAffined(
            keys=spatial,
            prob=0.7,
            rotate_range=np.deg2rad(rotate_deg),
            scale_range=(scale, scale),
            mode=("bilinear", "nearest") + (("nearest",) if with_prior else ()),
            padding_mode="zeros",
        ),
        RandScaleIntensityd(keys="image", factors=intensity, prob=0.5),
        RandAdjustContrastd(keys="image", gamma=(1 - intensity * 2, 1 + intensity * 2), prob=0.3),
        RandGaussianNoised(keys="image", std=intensity / 3, prob=0.3),
    ]
    if flip:
        transforms.insert(0, RandFlipd(keys=spatial, spatial_axis=1, prob=0.5))
    compose = Compose(transforms)
    compose.set_random_state(seed=seed)
    return compose


def augment_batch(
    images: np.ndarray, labels: np.ndarray, augmentation: Compose, priors: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) image and label arrays (and (B, C, H, W) priors) -> augmented (B, 1 [+ C], H, W) float input
    (the priors appended as channels) and (B, 1, H, W) long label tensors."""
    out_images, out_labels = [], []
    for index, (image, label) in enumerate(zip(images, labels)):
        sample = {"image": image[None].astype(np.float32), "label": label[None].astype(np.float32)}
        if priors is not None:
            sample["prior"] = priors[index].astype(np.float32)
        sample = augmentation(sample)
        channels = [torch.as_tensor(sample["image"]).float()]
        if priors is not None:
            channels.append(torch.as_tensor(sample["prior"]).float())
        out_images.append(torch.cat(channels))
        out_labels.append(torch.as_tensor(sample["label"]).round().long())
    return torch.stack(out_images), torch.stack(out_labels)
