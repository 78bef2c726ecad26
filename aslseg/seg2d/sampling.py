"""Batches that contain tumor, and (from round 1 on) a guaranteed share of ground truth.

Tumor is a tiny fraction of the pixels: with uniform slice sampling a CPU-budget training collapses to
predicting background (see docs/BENCHMARKS.md). A fixed share of every labeled batch is drawn from slices
that contain tumor; the rest uniformly from all labeled slices.

From round 1 on the labeled slices are ground truth plus accepted pseudo labels, and the pseudo-labeled ones
can outnumber the ground truth several times over; nearly all of them show "tumor", so drawn together they
would also fill the foreground share. `StratifiedBatchSampler` draws at least a fixed share of every batch
from the ground-truth slices (their own share of the slices when that is more), each part with its own
foreground share, so pseudo labels add to the ground truth instead of crowding it out.

Even so, a batch of round 1 holds more tumor slices than one of round 0 (0.64-0.75 -> 0.73-0.88 on the
default), and a model trained on it calls tumor more readily. With tumor-free pseudo labels in the list
(`select.negatives`), `ShapeKeepingBatchSampler` keeps round 0's shape instead: the foreground share of every
batch from slices with tumor, the rest uniform, each kind of slot split between ground truth and pseudo labels
of that kind.
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


class StratifiedBatchSampler:
    """At least `truth_share` of every batch from the slices where `is_truth` is set -- more when they are
    more than that share of all slices, so that a few pseudo labels are never drawn more often than the
    ground truth -- and the rest from the others (rounded; at least one slice of each part when both exist);
    within each part as ForegroundBatchSampler draws. With only one part present, every slice of the batch
    comes from it."""

    def __init__(self, has_tumor: np.ndarray, is_truth: np.ndarray, batch_size: int, foreground_fraction: float,
                 truth_share: float, rng: np.random.Generator):
        if not 0 <= truth_share <= 1:
            raise ValueError(f"the ground-truth share of a batch must lie in [0, 1], got {truth_share}")
        has_tumor, is_truth = np.asarray(has_tumor, dtype=bool), np.asarray(is_truth, dtype=bool)
        self.parts = []
        truth, pseudo = np.flatnonzero(is_truth), np.flatnonzero(~is_truth)
        if len(truth) and len(pseudo):
            sizes = list(zip((truth, pseudo), _split_slots(batch_size, truth, pseudo, truth_share)))
        else:
            sizes = [(truth if len(truth) else pseudo, batch_size)]
        for rows, size in sizes:
            if size:
                self.parts.append((rows, ForegroundBatchSampler(has_tumor[rows], size, foreground_fraction, rng)))
        self.rng = rng

    def __call__(self) -> np.ndarray:
        return self.rng.permutation(np.concatenate([rows[draw()] for rows, draw in self.parts]).astype(int))


class ShapeKeepingBatchSampler:
    """Round 0's batch shape -- round(`foreground_fraction` x batch) slices with tumor, the rest uniform over
    the ground truth -- with pseudo labels in both kinds of slot, each only as its own kind: those with tumor
    in the tumor slots, the tumor-free ones (negatives) in the others. In each kind of slot at least
    `truth_share` comes from the ground truth (more when the ground truth is more than that share of the slices
    it competes with; at least one slot of each part when both exist), so the pseudo labels neither tilt the
    batch towards tumor nor crowd out the ground truth."""

    def __init__(self, has_tumor: np.ndarray, is_truth: np.ndarray, batch_size: int, foreground_fraction: float,
                 truth_share: float, rng: np.random.Generator):
        if not 0 <= truth_share <= 1:
            raise ValueError(f"the ground-truth share of a batch must lie in [0, 1], got {truth_share}")
        has_tumor, is_truth = np.asarray(has_tumor, dtype=bool), np.asarray(is_truth, dtype=bool)
        n_tumor = int(round(batch_size * foreground_fraction)) if has_tumor.any() else 0
        tumor_truth, tumor_pseudo = np.flatnonzero(has_tumor & is_truth), np.flatnonzero(has_tumor & ~is_truth)
        any_truth, tumor_free_pseudo = np.flatnonzero(is_truth), np.flatnonzero(~has_tumor & ~is_truth)
        self.parts = [
            *zip((tumor_truth, tumor_pseudo), _split_slots(n_tumor, tumor_truth, tumor_pseudo, truth_share)),
            *zip((any_truth, tumor_free_pseudo),
                 _split_slots(batch_size - n_tumor, any_truth, tumor_free_pseudo, truth_share)),
        ]
        self.parts = [(rows, size) for rows, size in self.parts if size]
        self.rng = rng

    def __call__(self) -> np.ndarray:
        return self.rng.permutation(np.concatenate([self.rng.choice(rows, size) for rows, size in self.parts])
                                    .astype(int))


def _split_slots(count: int, truth: np.ndarray, pseudo: np.ndarray, truth_share: float) -> tuple[int, int]:
    """`count` slots as (ground truth, pseudo labels): at least `truth_share` (or the ground truth's own share
    of the slices, when more) to the ground truth, rounded, at least one slot to each side when there are two;
    all to one side when the other has no slices."""
    if count == 0 or not len(pseudo):
        return count, 0
    if not len(truth):
        return 0, count
    share = max(truth_share, len(truth) / (len(truth) + len(pseudo)))
    n_truth = count if share == 1 else min(max(int(round(count * share)), 1), count - 1)
    return n_truth, count - n_truth
