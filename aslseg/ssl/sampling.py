"""Batches that contain tumor.

Tumor is a tiny fraction of the pixels: with uniform slice sampling a CPU-budget training collapses to
predicting background (see docs/BENCHMARKS.md). A fixed share of every labeled batch is drawn from slices
that contain tumor; the rest uniformly from all labeled slices.
"""

from __future__ import annotations

import numpy as np


class ForegroundBatchSampler:
    def __init__(self, has_tumor: np.ndarray, batch_size: int, foreground_fraction: float, rng: np.random.Generator):
        self.all = np.arange(len(has_tumor))
        self.foreground = np.flatnonzero(has_tumor)
        self.n_foreground = int(round(batch_size * foreground_fraction)) if len(self.foreground) else 0
        self.batch_size = batch_size
        self.rng = rng

    def __call__(self) -> np.ndarray:
        foreground = self.rng.choice(self.foreground, self.n_foreground) if self.n_foreground else []
        rest = self.rng.choice(self.all, self.batch_size - self.n_foreground)
        return self.rng.permutation(np.concatenate([foreground, rest]).astype(int))
