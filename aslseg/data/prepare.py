"""Turning one CT case into the 2D slices every stage trains and predicts on.

Steps: keep the slices that contain liver (plus a margin) -- the slice selection uses the liver mask, as in
liver-tumor work that assumes a known liver region -- map HU through the window to [0, 1], and resize
in-plane to `size` x `size` by area averaging (an exact anti-aliasing filter for downsampling, cheap as two
matrix products). The effective voxel spacing in mm is kept so that metrics are computed in mm.

The prepared case is written as two files on purpose: the image file (image, liver region, spacing) is what
training and prediction read; the tumor label file is read only for labeled volumes and by evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aslseg.data.lits import CaseArrays, DataError


@dataclass(frozen=True)
class PreparedCase:
    image: np.ndarray  # float32 (S, size, size) in [0, 1]
    liver: np.ndarray  # uint8 (S, size, size): liver incl. tumor, the region that selected the slices
    tumor: np.ndarray  # uint8 (S, size, size)
    slice_index: np.ndarray  # int32 (S,): index of each kept slice in the canonical (inferior->superior) volume
    spacing: np.ndarray  # float64 (3,): mm along (slices, rows, cols) of the prepared grid


def area_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix whose rows average the input pixels each output pixel covers (weights = overlap)."""
    edges_out = np.linspace(0.0, n_in, n_out + 1)
    left, right = edges_out[:-1, None], edges_out[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(right, pixel + 1) - np.maximum(left, pixel), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def resize_stack(stack: np.ndarray, size: int) -> np.ndarray:
    """Area-resize every slice of a (S, H, W) float stack to (S, size, size)."""
    rows = area_resize_matrix(stack.shape[1], size).astype(np.float32)
    cols = area_resize_matrix(stack.shape[2], size).astype(np.float32)
    return np.einsum("rh,shw,cw->src", rows, stack.astype(np.float32, copy=False), cols, optimize=True)


def resize_labels(labels: np.ndarray, size: int, n_labels: int = 3) -> np.ndarray:
    """Resize a label stack by area-averaging each label's indicator and taking the majority."""
    fractions = np.stack([resize_stack(labels == value, size) for value in range(n_labels)])
    return fractions.argmax(axis=0).astype(np.uint8)


def liver_slice_range(labels: np.ndarray, margin: int) -> tuple[int, int]:
    """[first, stop) of the slices from the first to the last with liver, widened by `margin` each side."""
    has_liver = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    if has_liver.size == 0:
        raise DataError("no slice contains liver")
    return max(0, int(has_liver[0]) - margin), min(labels.shape[0], int(has_liver[-1]) + margin + 1)


def window(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map HU linearly so that `low` -> 0 and `high` -> 1, clipping outside."""
    return np.clip((hu - low) / (high - low), 0.0, 1.0).astype(np.float32)


def prepare_case(case: CaseArrays, window_hu: tuple[float, float], size: int, margin: int) -> PreparedCase:
    start, stop = liver_slice_range(case.labels, margin)
    hu, labels = case.hu[start:stop], case.labels[start:stop]
    image = np.clip(resize_stack(window(hu, *window_hu), size), 0.0, 1.0)
    labels = resize_labels(labels, size)
    slice_mm, row_mm, col_mm = case.spacing
    spacing = np.array([slice_mm, row_mm * hu.shape[1] / size, col_mm * hu.shape[2] / size])
    return PreparedCase(
        image=image,
        liver=(labels > 0).astype(np.uint8),
        tumor=(labels == 2).astype(np.uint8),
        slice_index=np.arange(start, stop, dtype=np.int32),
        spacing=spacing,
    )
