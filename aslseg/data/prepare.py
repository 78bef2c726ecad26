"""Turning one CT case into the 2D slices every stage trains and predicts on.

Steps: keep the slices that contain liver (plus a margin) -- the slice selection uses the liver mask, as in
liver-tumor work that assumes a known liver region -- optionally crop in-plane to a square around the liver
(`crop: liver`), map HU through the window to [0, 1], and resize in-plane to `size` x `size` by area
averaging (an exact anti-aliasing filter for downsampling, cheap as two matrix products). The effective
voxel spacing in mm is kept so that metrics are computed in mm.

Why the liver crop is the default: at 128 x 128 a whole abdominal slice has ~3 mm pixels, and a 10 mm lesion
is 3 pixels wide; the liver's square (~200-250 mm) gives ~1.8 mm pixels at the same cost. The crop box is
stored with the case so that masks can be placed back into the full slice.

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
    crop_box: np.ndarray  # int64 (4,): row0, col0, rows, cols of the in-plane crop in the full slice (may overhang)
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


def liver_crop_box(labels: np.ndarray, spacing_rc: tuple[float, float], margin_mm: float) -> np.ndarray:
    """Square (in mm) in-plane box around the liver of a slice stack, widened by `margin_mm` on each side.

    Returns (row0, col0, rows, cols) in pixels of the full slice; the box may reach past the image edge.
    """
    rows_with_liver = np.flatnonzero(labels.any(axis=(0, 2)))
    cols_with_liver = np.flatnonzero(labels.any(axis=(0, 1)))
    row_mm, col_mm = spacing_rc
    centre = np.array([rows_with_liver[[0, -1]].mean(), cols_with_liver[[0, -1]].mean()]) + 0.5
    side_mm = max(np.ptp(rows_with_liver) * row_mm, np.ptp(cols_with_liver) * col_mm) + 2 * margin_mm
    extent = np.ceil(side_mm / np.array([row_mm, col_mm])).astype(int)
    start = np.round(centre - extent / 2).astype(int)
    return np.array([start[0], start[1], extent[0], extent[1]])


def crop_stack(stack: np.ndarray, box: np.ndarray, fill: float) -> np.ndarray:
    """Cut `box` (row0, col0, rows, cols) out of every slice, padding with `fill` where it overhangs."""
    row0, col0, rows, cols = (int(v) for v in box)
    out = np.full((stack.shape[0], rows, cols), fill, dtype=stack.dtype)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + rows, stack.shape[1]), min(col0 + cols, stack.shape[2])
    out[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = stack[:, r0:r1, c0:c1]
    return out


def prepare_case(
    case: CaseArrays,
    window_hu: tuple[float, float],
    size: int,
    margin: int,
    crop: str = "liver",
    crop_margin_mm: float = 15.0,
) -> PreparedCase:
    start, stop = liver_slice_range(case.labels, margin)
    hu, labels = case.hu[start:stop], case.labels[start:stop]
    slice_mm, row_mm, col_mm = case.spacing
    if crop == "liver":
        box = liver_crop_box(labels, (row_mm, col_mm), crop_margin_mm)
        hu, labels = crop_stack(hu, box, fill=-1024.0), crop_stack(labels, box, fill=0)
    elif crop == "none":
        box = np.array([0, 0, hu.shape[1], hu.shape[2]])
    else:
        raise ValueError(f"unknown crop {crop!r} (liver or none)")
    image = np.clip(resize_stack(window(hu, *window_hu), size), 0.0, 1.0)
    labels = resize_labels(labels, size)
    spacing = np.array([slice_mm, row_mm * hu.shape[1] / size, col_mm * hu.shape[2] / size])
    return PreparedCase(
        image=image,
        liver=(labels > 0).astype(np.uint8),
        tumor=(labels == 2).astype(np.uint8),
        slice_index=np.arange(start, stop, dtype=np.int32),
        crop_box=box.astype(np.int64),
        spacing=spacing,
    )
