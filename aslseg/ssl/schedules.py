"""Schedules shared by the SSL methods: the consistency ramp-up and the EMA teacher update."""

from __future__ import annotations

import math

import torch


def sigmoid_rampup(progress: float, length: float) -> float:
    """exp(-5 (1 - t)^2) with t = progress / length clipped to [0, 1] (Laine & Aila; used by MT, UA-MT, CPS)."""
    if length <= 0:
        return 1.0
    t = min(max(progress / length, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, decay: float, step: int) -> None:
    """teacher <- a * teacher + (1 - a) * student with a = min(1 - 1 / (step + 1), decay): the teacher follows
    the student closely at first, then averages over ~1 / (1 - decay) steps."""
    alpha = min(1.0 - 1.0 / (step + 1), decay)
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)
