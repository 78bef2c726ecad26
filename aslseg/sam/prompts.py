"""Prompts for MS(.) from a mask: one prompt per connected component (liver tumors are multifocal, and SAM
segments one object per prompt), as a box with a margin, a point at the most interior pixel, several interior
points, or a box plus its point. Coordinates are (x, y) = (column, row) in the mask's pixels.

Used twice with the same code: on Pseudo Label 1 for inference, and on ground truth (with box jitter) for
fine-tuning, so that what SAM is tuned on is what it is later asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

PROMPT_TYPES = ("box", "point", "multipoint", "box+point")
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)  # what a component of a 2D mask is, here, in liver_rim and in corruptions


@dataclass(frozen=True)
class PromptShape:
    """How a mask's connected components become prompts, the same wherever SAM is prompted or fine-tuned
    (config `sam`: the keys aslseg/artifacts.py calls PROMPT_KEYS)."""

    box_margin: float  # pixels added around a component's box
    min_component_pixels: int  # smaller components are neither trained on nor prompted
    multipoint_n: int  # points of a multipoint prompt

    @classmethod
    def from_config(cls, sam: Mapping) -> PromptShape:
        """From config `sam` (or any mapping with its prompt-shape keys)."""
        return cls(sam["box_margin"], sam["min_component_pixels"], sam["multipoint_n"])

    def components(self, mask: np.ndarray) -> list[np.ndarray]:
        return components(mask, self.min_component_pixels)

    def prompt(self, component: np.ndarray, prompt_type: str) -> dict:
        return make_prompt(component, prompt_type, self.box_margin, self.multipoint_n)


def components(mask: np.ndarray, min_pixels: int) -> list[np.ndarray]:
    """The 8-connected components of a 2D mask as boolean masks, largest first; smaller than `min_pixels`
    dropped (specks that would make SAM segment noise)."""
    labels, count = ndimage.label(np.asarray(mask) > 0, structure=EIGHT_CONNECTED)
    if count == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    return [labels == index + 1 for index in order if sizes[index] >= min_pixels]


def box_of(component: np.ndarray, margin: float, shape: tuple[int, int]) -> np.ndarray:
    """[x0, y0, x1, y1] around a component, grown by `margin` pixels and clipped to the image."""
    rows, cols = np.nonzero(component)
    height, width = shape
    return np.array(
        [
            max(cols.min() - margin, 0),
            max(rows.min() - margin, 0),
            min(cols.max() + margin, width - 1),
            min(rows.max() + margin, height - 1),
        ],
        dtype=np.float32,
    )


def _depth(component: np.ndarray) -> np.ndarray:
    """Distance of each component pixel to the nearest pixel outside it (the image border counts as outside)."""
    return ndimage.distance_transform_edt(np.pad(component, 1))[1:-1, 1:-1]


def interior_point(component: np.ndarray) -> np.ndarray:
    """[x, y] of the pixel deepest inside the component (distance-transform maximum): unlike the centroid, it
    lies inside crescents and rings."""
    row, col = np.unravel_index(np.argmax(_depth(component)), component.shape)
    return np.array([col, row], dtype=np.float32)


def interior_points(component: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) [x, y] points spread over the component's core (pixels at least half as deep as the deepest):
    the deepest pixel first, then each next one farthest from those chosen. A component with fewer than n
    pixels repeats its last point (SAM takes a fixed number of points per prompt)."""
    depth = _depth(component)
    rows, cols = np.nonzero(depth >= depth.max() / 2)
    core = np.stack([cols, rows], axis=1).astype(np.float32)
    chosen = [int(np.argmax(depth[rows, cols]))]
    nearest = np.full(len(core), np.inf, dtype=np.float32)
    while len(chosen) < min(n, len(core)):
        nearest = np.minimum(nearest, np.linalg.norm(core - core[chosen[-1]], axis=1))
        chosen.append(int(np.argmax(nearest)))
    chosen += [chosen[-1]] * (n - len(chosen))
    return core[chosen]


def make_prompt(component: np.ndarray, prompt_type: str, margin: float, multipoint_n: int) -> dict:
    """One prompt of `prompt_type` for a component: {"box": [4] or None, "points": [[x, y], ...] or None,
    "point_labels": [1, ...] or None} (all points positive: they mark the tumor)."""
    if prompt_type not in PROMPT_TYPES:
        raise ValueError(f"unknown prompt type {prompt_type!r}; known: {list(PROMPT_TYPES)}")
    box = box_of(component, margin, component.shape) if "box" in prompt_type else None
    if prompt_type in ("point", "box+point"):
        points = interior_point(component)[None]
    elif prompt_type == "multipoint":
        points = interior_points(component, multipoint_n)
    else:
        points = None
    return {
        "box": None if box is None else box.tolist(),
        "points": None if points is None else points.tolist(),
        "point_labels": None if points is None else [1] * len(points),
    }


def slice_prompts(mask: np.ndarray, prompt_type: str, shape: PromptShape) -> list[dict]:
    """The prompts of one slice, one per kept component, each with the component's area in pixels."""
    return [
        {"component": index, "area": int(component.sum()), **shape.prompt(component, prompt_type)}
        for index, component in enumerate(shape.components(mask))
    ]
