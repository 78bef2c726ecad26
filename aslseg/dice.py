"""The package's one Dice formula, with its empty-mask rule stated once. Torch-free: the selection settings that
the Snakefile reads at parse time import it.

2|A∩B| / (|A| + |B|); where both masks are empty the value is `empty`: 1.0 (nothing to find, nothing found)
for scores, selection and checkpoints, None where an undefined Dice must be reported as such (the pseudo-label
diagnostics). The test metrics' MONAI Dice (aslseg/metrics.py) follows the same rule.
"""

from __future__ import annotations

import numpy as np


def dice_from_counts(intersection, total, empty: float | None = 1.0):
    """Dice from the intersection and |A| + |B| (numbers, or arrays of them; `empty` as the module says, a
    number for arrays)."""
    if np.ndim(total) == 0:
        return float(2 * intersection / total) if total else empty
    if empty is None:
        raise ValueError("an array of Dice values needs a number for both-empty entries")
    intersection, total = np.asarray(intersection, dtype=np.float64), np.asarray(total, dtype=np.float64)
    return np.where(total > 0, 2.0 * intersection / np.maximum(total, 1.0), empty)


def pooled_dice(pred: np.ndarray, gt: np.ndarray, empty: float | None = 1.0) -> float | None:
    """Dice over every pixel of two masks of one shape (any nonzero value is tumor)."""
    pred, gt = np.asarray(pred).astype(bool, copy=False), np.asarray(gt).astype(bool, copy=False)
    if pred.shape != gt.shape:
        raise ValueError(f"masks must have equal shapes, got {pred.shape} and {gt.shape}")
    return dice_from_counts(np.count_nonzero(pred & gt), np.count_nonzero(pred) + np.count_nonzero(gt), empty)


def slice_dice(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Dice per slice of (S, H, W) masks; 1.0 where both are empty."""
    inter = (pred & gt).sum(axis=(1, 2))
    total = pred.sum(axis=(1, 2)) + gt.sum(axis=(1, 2))
    return dice_from_counts(inter, total)
