"""The liver's partial-volume rim: components of Pseudo Label 1 that lie mostly in it get no prompt.

At the liver's edge each pixel mixes parenchyma with the fat or tissue beside it, so the outermost pixels are
darker than the liver, as a hypodense lesion is. SS(.)'s false positives gather there, while true lesions,
even those at the liver's surface, lie mostly deeper: on the default phantom about half of the prompted PL1
components have most of their pixels within RIM_MM of the liver's edge, and 4% of those touch a lesion; on a
phantom drawn differently two thirds, 4% (docs/BENCHMARKS.md). Prompting SAM there turns an artifact into a
confident, lesion-shaped pseudo label.

The rule (config sam.max_rim_share, 0.5 by default: it cleans the pseudo labels, and round 1 is better for it
on both phantoms the defaults were not tuned on, though not on the CPU default itself; docs/BENCHMARKS.md) is
applied wherever SAM is prompted from a PL1, real or synthetic (AN's training data replays the SAM run), and
never to ground truth (the decoder's fine-tuning).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from aslseg.sam.prompts import EIGHT_CONNECTED

# Depth of the rim in mm: CT's in-plane blur and a pixel of partial volume spread the liver's edge over a few
# mm, whatever the prepared slice's pixel size (two pixels at the default's ~1.6-1.8 mm).
RIM_MM = 4.0


def rim(liver: np.ndarray, pixel_mm: float) -> np.ndarray:
    """The liver pixels of a 2D mask within RIM_MM of its edge (or of the image's), the outermost ones always."""
    liver = np.asarray(liver) > 0
    depth = ndimage.distance_transform_edt(np.pad(liver, 1))[1:-1, 1:-1]  # 1 at the outermost liver pixels
    return liver & ((depth <= 1) | (depth * pixel_mm <= RIM_MM))


def off_rim(mask: np.ndarray, liver: np.ndarray, pixel_mm: float, max_share: float | None) -> np.ndarray:
    """A 2D `mask` without its 8-connected components that have more than `max_share` of their pixels in the
    rim of `liver` (the same slice's liver mask, pixels of `pixel_mm`); unchanged when `max_share` is None."""
    mask = np.asarray(mask) > 0
    if max_share is None or not mask.any():
        return mask
    if np.shape(liver) != mask.shape:
        raise ValueError(f"liver mask of shape {np.shape(liver)} for a pseudo label of shape {mask.shape}")
    labels, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    in_rim = np.bincount(labels[rim(liver, pixel_mm)], minlength=count + 1)
    keep = in_rim <= max_share * sizes
    keep[0] = False
    return keep[labels]
