"""Augmentation of training batches: small rotations and scalings, intensity jitter, optional left-right flips.

The whole batch is warped at once, on the training device, with one affine grid per slice. With MONAI's
per-slice transforms on the CPU, a GPU training step was 2.3-4.2x slower (docs/BENCHMARKS.md, "On a GPU").
The random parameters come from a CPU generator and the noise from one on the device, both seeded, so a run
is reproducible on the same device.

No flips by default: the liver sits on the patient's right, and where a tumor can be is part of what the
network should learn.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# How often each transform is applied to a slice.
P_AFFINE = 0.7
P_SCALE_INTENSITY = 0.5
P_CONTRAST = 0.3
P_NOISE = 0.3
P_FLIP = 0.5


class Augmenter:
    """Draws and applies random transforms to (B, H, W) slices with their labels and, for AN, prior channels.

    - affine (probability 0.7): rotation by up to `rotate_deg` degrees and an independent scaling of each
      axis by up to `scale`; bilinear for the image, nearest for the label and priors, zeros outside;
    - intensity, image only: scaling by up to `intensity` (0.5), gamma in 1 ± 2*`intensity` over the slice's
      own range (0.3), Gaussian noise of sd up to `intensity`/3 (0.3);
    - `flip`: left-right flips (0.5), before everything else.
    """

    def __init__(self, rotate_deg: float, scale: float, intensity: float, flip: bool, seed: int, device="cpu"):
        self.rotate = math.radians(rotate_deg)
        self.scale, self.intensity, self.flip = scale, intensity, flip
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.noise_generator = torch.Generator(device=self.device).manual_seed(seed)

    def __call__(
        self, images: np.ndarray, labels: np.ndarray | None = None, priors: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, H, W) images [and labels, (B, C, H, W) priors] -> (B, 1 [+ C], H, W) float input on the device
        (priors appended as channels) and (B, 1, H, W) long labels (None without labels)."""
        image = self._tensor(images)[:, None]
        carried = []  # label and prior channels: moved with the image, resampled with nearest, no jitter
        if labels is not None:
            carried.append(self._tensor(labels)[:, None])
        if priors is not None:
            carried.append(self._tensor(priors))
        masks = torch.cat(carried, dim=1) if carried else None
        if self.flip:
            flipped = self._chance(len(image), P_FLIP).view(-1, 1, 1, 1)
            image = torch.where(flipped, image.flip(-1), image)
            masks = None if masks is None else torch.where(flipped, masks.flip(-1), masks)
        theta = self._affine_parameters(image.shape)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        image = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if masks is not None:
            masks = F.grid_sample(masks, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        image = self._jitter_intensity(image)
        label = None
        if labels is not None:
            label, masks = masks[:, :1].round().long(), masks[:, 1:]
        if priors is not None:
            image = torch.cat([image, masks], dim=1)
        return image, label

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32).to(self.device)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=self.generator)

    def _chance(self, n: int, probability: float) -> torch.Tensor:
        return (torch.rand(n, generator=self.generator) < probability).to(self.device)

    def _affine_parameters(self, shape: torch.Size) -> torch.Tensor:
        """(B, 2, 3) matrices for affine_grid: each maps an output pixel to where it samples the input, in
        coordinates normalised to [-1, 1]; identity for slices the affine transform skips."""
        n, (height, width) = shape[0], shape[-2:]
        applied = torch.rand(n, generator=self.generator) < P_AFFINE
        angle = self._uniform(n, -self.rotate, self.rotate) * applied
        scale_x = 1 + self._uniform(n, -self.scale, self.scale) * applied
        scale_y = 1 + self._uniform(n, -self.scale, self.scale) * applied
        cos, sin = torch.cos(angle), torch.sin(angle)
        # The rotation acts in pixel units; normalised x and y differ in scale where height != width.
        aspect = height / width
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos * scale_x, -sin * scale_y * aspect
        theta[:, 1, 0], theta[:, 1, 1] = sin * scale_x / aspect, cos * scale_y
        return theta.to(self.device)

    def _jitter_intensity(self, image: torch.Tensor) -> torch.Tensor:
        n, f = len(image), self.intensity
        view = (-1, 1, 1, 1)
        factor = torch.where(self._chance(n, P_SCALE_INTENSITY), 1 + self._uniform(n, -f, f).to(self.device), 1.0)
        image = image * factor.view(view)
        contrast = self._chance(n, P_CONTRAST).view(view)
        gamma = self._uniform(n, 1 - 2 * f, 1 + 2 * f).to(self.device).view(view)
        low = image.amin(dim=(1, 2, 3), keepdim=True)
        span = image.amax(dim=(1, 2, 3), keepdim=True) - low
        adjusted = ((image - low) / (span + 1e-7)).pow(gamma) * span + low
        image = torch.where(contrast, adjusted, image)
        noisy = self._chance(n, P_NOISE).view(view)
        sd = self._uniform(n, 0.0, f / 3).to(self.device).view(view)
        noise = torch.randn(image.shape, generator=self.noise_generator, device=self.device) * sd
        return torch.where(noisy, image + noise, image)
