"""Uncertainty-Aware Mean Teacher (Yu et al. 2019): Mean Teacher whose consistency counts only where the
teacher is certain -- predictive entropy over several noisy passes below a threshold that ramps from
0.75 ln 2 to ln 2 (the maximum for two classes)."""

from __future__ import annotations

import math

import torch

from aslseg.ssl.methods.mean_teacher import MeanTeacher
from aslseg.ssl.schedules import sigmoid_rampup


class UncertaintyAwareMeanTeacher(MeanTeacher):
    def __init__(self, settings, device: str):
        super().__init__(settings, device)
        self.progress = 0.0

    def loss(self, labeled, unlabeled, progress: float):
        self.progress = progress
        return super().loss(labeled, unlabeled, progress)

    def consistency_map(self, student: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            passes = torch.stack([self.teacher_probabilities(image) for _ in range(self.settings.uamt_passes)])
            mean = passes.mean(dim=0)
            entropy = -(mean * torch.log(mean + 1e-6)).sum(dim=1, keepdim=True)
            threshold = (0.75 + 0.25 * sigmoid_rampup(self.progress, self.settings.rampup)) * math.log(2)
            certain = (entropy < threshold).float()
        squared = (student - mean) ** 2
        # Average over the certain pixels only (as the reference does), not over all of them.
        return squared * certain * (certain.numel() / (certain.sum() + 1e-6))
