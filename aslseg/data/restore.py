"""Preparation's geometry undone (aslseg/data/prepare.py): stacks on a prepared or resized grid back onto
the full slices of the volume they came from."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def restore_stack(prepared: np.ndarray, slice_index: np.ndarray, crop_box: np.ndarray,
                  full_shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of preparation's geometry for a float stack such as a probability:
    each prepared slice resized back to its crop box (linear, pixel areas aligned) and put into the full slice
    it came from; zero in the slices and pixels preparation left out. float32 `full_shape`, display order."""
    row0, col0, rows, cols = (int(v) for v in crop_box)
    size_r, size_c = prepared.shape[1:]
    boxed = ndimage.zoom(prepared.astype(np.float32, copy=False), (1, rows / size_r, cols / size_c), order=1,
                         mode="nearest", grid_mode=True)[:, :rows, :cols]
    full = np.zeros(full_shape, dtype=np.float32)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + rows, full_shape[1]), min(col0 + cols, full_shape[2])
    full[slice_index, r0:r1, c0:c1] = boxed[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
    return full
