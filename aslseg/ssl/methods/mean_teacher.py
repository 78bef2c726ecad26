"""Mean Teacher (Tarvainen & Valpola 2017): an EMA teacher's softmax on noisy unlabeled inputs is the target
of the student's softmax (MSE), weighted by a sigmoid ramp-up."""

from __future__ import annotations

import copy

import torch

from aslseg.ssl.methods.base import Batch, Method
from aslseg.ssl.schedules import ema_update


class MeanTeacher(Method):
    uses_unlabeled = True

    def __init__(self, settings, device: str):
        super().__init__(settings, device)
        self.teacher = copy.deepcopy(self.student)
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)

    def start_from(self, state_dict: dict) -> None:
        super().start_from(state_dict)
        self.teacher.load_state_dict(state_dict)  # the teacher is the student's average: it starts where it does

    def noisy(self, image: torch.Tensor) -> torch.Tensor:
        """Teacher input noise: clamp(N(0, sd), +-2 sd)."""
        sd = self.settings.teacher_noise
        return image + torch.clamp(torch.randn_like(image) * sd, -2 * sd, 2 * sd)

    def teacher_probabilities(self, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self.teacher(self.noisy(image)), dim=1)

    def loss(self, labeled: Batch, unlabeled: Batch | None, progress: float):
        supervised = self.supervised_loss(self.student(labeled.image), labeled.label, labeled.region)
        student = torch.softmax(self.student(unlabeled.image), dim=1)
        consistency = self.consistency_map(student, unlabeled.image).mean()
        weight = self.consistency_weight(progress)
        return supervised + weight * consistency, {
            "supervised": supervised.item(),
            "consistency": consistency.item(),
            "weight": weight,
        }

    def consistency_map(self, student: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return (student - self.teacher_probabilities(image)) ** 2

    def after_step(self, step: int) -> None:
        ema_update(self.teacher, self.student, self.settings.ema_decay, step)
