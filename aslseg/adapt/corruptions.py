"""Synthetic pseudo-labels: ground-truth tumor masks corrupted the way SS(.) errs, to train AN(.).

AN is trained on the labeled slices only, yet at inference it sees SAM's output on Pseudo Label 1, which
carries SS's mistakes. So each labeled slice's ground truth is corrupted into a plausible PL1 (missed and
merged lesions, under/over-segmentation, ragged and mis-registered boundaries, false positives, missed
slices), prompted through SAM like a real PL1 (not here), and AN learns to map image ⊕ SAM's output back to
the ground truth.

Every corruption is a small pure function ``(mask, liver, rng, strength...) -> uint8 mask`` that does only
what its name says, so each can be checked on a known mask; ``liver`` is the slice's liver region (liver +
tumor), which only the false blobs need but every function takes, so that :func:`corrupt` calls them alike.
Randomness comes only from the ``np.random.Generator`` passed in, never the global one. Masks are 2D,
nonzero = tumor; results stay inside the image and are uint8 {0, 1}.

:func:`corrupt` applies them to one slice in the fixed order of :data:`CORRUPTIONS`, each with its own
probability; :func:`synthesize` makes several corrupted copies of many slices, each copy drawn from its own
generator so that it does not depend on how the slices are batched.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from aslseg.sam.prompts import EIGHT_CONNECTED  # a lesion is what a prompt covers: one 8-connected component

# Application order: lesion-level errors first (which lesions SS finds and how it groups them), then their
# extent (size, boundary, position), then false positives (after the shift, so they stay where they were put
# and off the tumor), and a missed slice last, which wipes everything.
CORRUPTIONS = (
    "drop_lesions",
    "merge_nearby",
    "erode",
    "dilate",
    "jag_boundary",
    "shift",
    "add_false_blobs",
    "empty",
)
# How much longer than the shortest link a path through a merge neck may be, in pixels. It sets the neck's
# width (about 3 px between two 8-px-radius lesions; the whole facing band, +-1 px, between straight edges)
# and keeps the digital line between the closest pixels inside the neck at any angle.
_NECK_SLACK = 1.0


# ----------------------------------------------------------------------------------------------------------
# settings
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorruptionSettings:
    """Keys of the config's corruption section (the config schema documents them and holds their defaults).
    ``p_<name>`` is the chance that corruption ``<name>`` is applied to a slice; erode and dilate exclude each
    other (one draw picks erode, dilate or neither), so ``p_erode + p_dilate <= 1``."""

    p_drop_lesions: float
    drop_per_lesion: float  # chance each 8-connected lesion is removed when drop_lesions applies
    p_merge_nearby: float
    merge_gap: int  # lesions separated by at most this many background pixels are joined
    p_erode: float
    erode_max_radius: int  # radius drawn from 1..this, pixels
    p_dilate: float
    dilate_max_radius: int
    p_jag_boundary: float
    jag_amplitude: float  # rms displacement per axis, pixels
    jag_sigma: float  # smoothness of the displacement field (Gaussian sigma), pixels
    p_shift: float
    shift_max: int  # translation drawn from -this..this per axis, pixels
    p_add_false_blobs: float
    false_blob_max_count: int  # 1..this blobs are added
    false_blob_diameter: tuple[float, float]  # longest extent of a blob, drawn uniformly, pixels
    false_blob_margin: int  # pixels beyond the liver's edge a blob may reach (SS's false positives straddle it)
    false_blob_dark_share: float  # chance a blob is centred where the image is darker than the liver around
    p_empty: float

    def __post_init__(self) -> None:
        for name in [f"p_{c}" for c in CORRUPTIONS] + ["drop_per_lesion", "false_blob_dark_share"]:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.p_erode + self.p_dilate > 1.0:
            raise ValueError("p_erode + p_dilate must be <= 1 (a slice is eroded, dilated or neither)")
        for name in ("merge_gap", "erode_max_radius", "dilate_max_radius", "false_blob_max_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.shift_max < 0 or self.false_blob_margin < 0 or self.jag_amplitude < 0 or self.jag_sigma <= 0:
            raise ValueError("shift_max, false_blob_margin and jag_amplitude must be >= 0 and jag_sigma > 0")
        low, high = self.false_blob_diameter
        if not 1.0 <= low <= high:
            raise ValueError(f"false_blob_diameter must be a range [lo, hi] with 1 <= lo <= hi, got {[low, high]}")

    @classmethod
    def from_config(cls, section: dict) -> "CorruptionSettings":
        """From the config's corruption section (already filled with schema defaults). Every key is required
        and unknown keys are rejected: a silently ignored typo would change AN's training data."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(section) - names, names - set(section)
        if unknown or missing:
            raise KeyError(f"corruption settings: unknown {sorted(unknown)}, missing {sorted(missing)}")
        return cls(
            **{
                key: tuple(float(v) for v in value) if key == "false_blob_diameter" else value
                for key, value in section.items()
            }
        )

    def arguments(self, name: str) -> dict:
        """The strength arguments of corruption `name` (beyond mask, liver, rng)."""
        return {
            "drop_lesions": {"p": self.drop_per_lesion},
            "merge_nearby": {"gap": self.merge_gap},
            "erode": {"max_radius": self.erode_max_radius},
            "dilate": {"max_radius": self.dilate_max_radius},
            "jag_boundary": {"amplitude": self.jag_amplitude, "sigma": self.jag_sigma},
            "shift": {"max_pixels": self.shift_max},
            "add_false_blobs": {"max_count": self.false_blob_max_count, "diameter": self.false_blob_diameter,
                                "margin": self.false_blob_margin, "dark_share": self.false_blob_dark_share},
            "empty": {},
        }[name]


# ----------------------------------------------------------------------------------------------------------
# the corruptions
# ----------------------------------------------------------------------------------------------------------
def _binary(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask) > 0


def disk(radius: float) -> np.ndarray:
    """A digital disk (pixels with x² + y² <= radius²), the structuring element of erode and dilate:
    unlike a square it grows and shrinks lesions evenly in every direction."""
    half = int(math.floor(radius))
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    return x**2 + y**2 <= radius**2


def drop_lesions(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Remove each 8-connected lesion with probability `p` (SS missing lesions); never adds a pixel."""
    labels, count = ndimage.label(_binary(mask), structure=EIGHT_CONNECTED)
    keep = np.concatenate([[False], rng.random(count) >= p])
    return keep[labels].astype(np.uint8)


def merge_nearby(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator, gap: int) -> np.ndarray:
    """Join lesions separated by at most `gap` background pixels (pixel centres at most gap + 1 apart): SS
    merging adjacent lesions. Each close pair is joined by a neck, the background pixels p with
    d_A(p) + d_B(p) <= D + 1 (d_X: distance to lesion X, D: the pair's distance): a band around the shortest
    links between them, as wide as facing edges and a few pixels wide between round lesions. Only gaps between
    different lesions are filled; a plain closing would also fill each lesion's own notches, and it bridges
    round lesions only when the gap is far smaller than the disk."""
    binary = _binary(mask)
    labels, count = ndimage.label(binary, structure=EIGHT_CONNECTED)
    distances = [ndimage.distance_transform_edt(labels != number) for number in range(1, count + 1)]
    result = binary.copy()
    for first in range(count):
        for second in range(first + 1, count):
            total = distances[first] + distances[second]
            separation = total.min()  # reached at the nearer lesion's closest pixel
            if separation <= gap + 1:
                result |= total <= separation + _NECK_SLACK
    return result.astype(np.uint8)


def erode(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator, max_radius: int) -> np.ndarray:
    """Erode by a disk of radius drawn from 1..`max_radius` pixels (under-segmentation); lesions thinner than
    the disk vanish, as SS misses small lesions."""
    radius = int(rng.integers(1, max_radius + 1))
    return ndimage.binary_erosion(_binary(mask), structure=disk(radius)).astype(np.uint8)


def dilate(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator, max_radius: int) -> np.ndarray:
    """Dilate by a disk of radius drawn from 1..`max_radius` pixels (over-segmentation). Not clipped to the
    liver: SS's over-segmentation does not stop at the liver boundary either."""
    radius = int(rng.integers(1, max_radius + 1))
    return ndimage.binary_dilation(_binary(mask), structure=disk(radius)).astype(np.uint8)


def jag_boundary(
    mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator, amplitude: float, sigma: float
) -> np.ndarray:
    """Elastic deformation: resample the mask (nearest neighbour) through a smooth random displacement field,
    Gaussian-filtered white noise with smoothness `sigma` scaled to an rms of `amplitude` pixels per axis.
    Ragged, wobbly boundaries like SS's, with lesion areas roughly kept. The rms (not the maximum) sets the
    scale so that a given amplitude means the same on any image size."""
    binary = _binary(mask)
    if amplitude == 0 or not binary.any():
        return binary.astype(np.uint8)
    grid = np.indices(binary.shape, dtype=np.float64)
    for axis in range(2):
        field = ndimage.gaussian_filter(rng.standard_normal(binary.shape), sigma)
        grid[axis] += field * (amplitude / max(float(field.std()), 1e-12))
    return ndimage.map_coordinates(binary.astype(np.uint8), grid, order=0, mode="constant", cval=0)


def shift(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator, max_pixels: int) -> np.ndarray:
    """Translate by whole pixels drawn from -`max_pixels`..`max_pixels` per axis (mis-registration); what
    leaves the image is lost."""
    offset = rng.integers(-max_pixels, max_pixels + 1, size=2)
    return ndimage.shift(_binary(mask).astype(np.uint8), offset, order=0, mode="constant", cval=0)


def _blob(diameter: float, rng: np.random.Generator) -> np.ndarray:
    """A filled irregular blob (odd-sided patch, centred) whose longest extent is `diameter` pixels: an
    ellipse with a random axis ratio and angle whose radius is wobbled by a few low harmonics, since SS's false
    positives are neither discs nor perfect ellipses."""
    ratio, angle = rng.uniform(0.5, 1.0), rng.uniform(0.0, np.pi)
    harmonics = np.arange(2, 5)
    weights, phases = rng.uniform(0.0, 0.08, harmonics.size), rng.uniform(0.0, 2 * np.pi, harmonics.size)

    def radius(theta: np.ndarray) -> np.ndarray:
        along = theta - angle  # polar radius of an ellipse with semi-axes 1 and `ratio`, then the wobble
        ellipse = ratio / np.sqrt((ratio * np.cos(along)) ** 2 + np.sin(along) ** 2)
        return ellipse * (1 + (weights * np.cos(np.multiply.outer(theta, harmonics) + phases)).sum(axis=-1))

    theta = np.linspace(0.0, 2 * np.pi, 180, endpoint=False)
    outline = radius(theta)[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    longest = np.linalg.norm(outline[:, None] - outline[None], axis=-1).max()
    scale = diameter / longest
    half = int(math.ceil(scale * radius(theta).max()))
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    patch = np.hypot(y, x) <= scale * radius(np.arctan2(y, x))
    patch[half, half] = True  # a tiny diameter still gives a pixel
    return patch


def darkness(image: np.ndarray, liver: np.ndarray, fine: float = 1.0, coarse: float = 6.0, cap: float = 0.2) -> np.ndarray:
    """How much darker each pixel's neighbourhood (Gaussian, `fine` px) is than the liver around it (the
    liver's own pixels, Gaussian-weighted over `coarse` px), in image units, clipped to [0, `cap`]: where a
    hypodense-lesion detector is lured. On the default phantom SS(.)'s false positives are such spots: ~15 HU
    darker than their surroundings, 28% of them mostly outside the liver (benchmarks/selection_features.py's
    round-0 run). The cap keeps fat and air beyond the liver's edge from outweighing every spot inside it."""
    image, liver = np.asarray(image, dtype=np.float32), _binary(liver).astype(np.float32)
    weight = ndimage.gaussian_filter(liver, coarse)
    background = ndimage.gaussian_filter(image * liver, coarse) / np.maximum(weight, 1e-6)
    dark = np.where(weight > 1e-3, background - ndimage.gaussian_filter(image, fine), 0.0)
    return np.clip(dark, 0.0, cap).astype(np.float32)


def add_false_blobs(
    mask: np.ndarray,
    liver: np.ndarray,
    rng: np.random.Generator,
    max_count: int,
    diameter: tuple[float, float],
    margin: int = 0,
    dark_share: float = 0.0,
    dark: np.ndarray | None = None,
) -> np.ndarray:
    """Add 1..`max_count` irregular blobs, each with a longest extent drawn from `diameter` (pixels), placed
    where they lie entirely inside the liver grown by `margin` pixels and do not touch (8-connectivity) the
    tumor or each other: false positives, SS's main failure (lesion precision 0.05-0.25 on the phantom). They
    are separate lesions, not bulges of real ones. Each blob's centre is drawn uniformly, or, with chance
    `dark_share` and a `dark` map (:func:`darkness`), in proportion to the squared darkness there: a blob on
    a lesion-like spot is the false positive AN has to learn to delete. A blob that fits nowhere is skipped."""
    result = _binary(mask).copy()
    region = _binary(liver)
    if margin > 0:
        region = ndimage.binary_dilation(region, structure=disk(margin))
    for _ in range(int(rng.integers(1, max_count + 1))):
        patch = _blob(rng.uniform(*diameter), rng)
        lured = rng.random() < dark_share
        allowed = region & ~ndimage.binary_dilation(result, structure=EIGHT_CONNECTED)
        # centres where the whole patch lies in `allowed` (the image border counts as not allowed)
        centres = np.flatnonzero(ndimage.binary_erosion(allowed, structure=patch, border_value=0))
        if centres.size == 0:
            continue
        weights = np.asarray(dark, dtype=np.float64).ravel()[centres] ** 2 if lured and dark is not None else None
        if weights is not None and weights.sum() > 0:
            pick = rng.choice(centres.size, p=weights / weights.sum())
        else:
            pick = rng.integers(centres.size)
        centre = np.unravel_index(centres[pick], result.shape)
        rows, cols = np.nonzero(patch)  # by pixel: the patch's empty margin may overhang the image
        half = patch.shape[0] // 2
        result[rows + centre[0] - half, cols + centre[1] - half] = True
    return result.astype(np.uint8)


def empty(mask: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An all-zero mask: SS missing the whole slice."""
    return np.zeros(np.shape(mask), dtype=np.uint8)


_FUNCTIONS = {
    function.__name__: function
    for function in (drop_lesions, merge_nearby, erode, dilate, jag_boundary, shift, add_false_blobs, empty)
}


# ----------------------------------------------------------------------------------------------------------
# one slice, many slices
# ----------------------------------------------------------------------------------------------------------
def corrupt(
    tumor: np.ndarray,
    liver: np.ndarray,
    settings: CorruptionSettings,
    rng: np.random.Generator,
    dark: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """One synthetic pseudo-label of a slice, and the names of the corruptions applied, in order.

    Whether each corruption applies is drawn first, one uniform per name of :data:`CORRUPTIONS` in that order
    (so the choices do not depend on what the corruptions draw); erode and dilate share one draw, so a slice
    is never both. A slice drawn `empty` returns only ["empty"], the other corruptions being moot. Tumor-free
    slices go through the same steps: they can get false blobs, which teaches AN to delete them. A corruption
    applied can leave the mask unchanged (dropping lesions of a tumor-free slice, a zero shift). `dark` is the
    slice's :func:`darkness` map, which only the false blobs use (without it they are placed uniformly)."""
    if np.shape(tumor) != np.shape(liver) or np.ndim(tumor) != 2:
        raise ValueError(f"tumor and liver must be 2D slices of one shape, got {np.shape(tumor)}, {np.shape(liver)}")
    draws = dict(zip(CORRUPTIONS, rng.random(len(CORRUPTIONS))))
    draws["dilate"] = draws["erode"] - settings.p_erode  # dilate takes [p_erode, p_erode + p_dilate) of it
    applied = [name for name in CORRUPTIONS if 0.0 <= draws[name] < getattr(settings, f"p_{name}")]
    if "empty" in applied:
        return empty(tumor, liver, rng), ["empty"]
    mask = _binary(tumor).astype(np.uint8)
    for name in applied:
        image_guided = {"dark": dark} if name == "add_false_blobs" else {}
        mask = _FUNCTIONS[name](mask, liver, rng, **settings.arguments(name), **image_guided)
    return mask, applied


def synthesize(
    tumor_slices: np.ndarray,
    liver_slices: np.ndarray,
    settings: CorruptionSettings,
    copies: int,
    seed: int,
    slice_ids: Sequence[int] | None = None,
    images: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """`copies` synthetic pseudo-labels of each of N slices: masks (N * copies, H, W) uint8, copy k of slice
    i at row i * copies + k; source_index (N * copies,), the row of the input slice each one comes from; and
    the corruptions applied to each.

    Copy k of a slice is drawn from ``np.random.default_rng([seed, slice_id, k])``, so it depends only on the
    seed, the slice and k, never on the other slices or on `copies`. `slice_ids` are the slices' stable ids
    (e.g. their rows in the prepared set; default 0..N-1): pass them when synthesizing a subset, so that a
    slice gets the same copies whichever batch it comes in. `images` (N, H, W), the slices themselves, let
    false blobs go to dark, lesion-like spots (:func:`darkness`)."""
    tumor_slices, liver_slices = np.asarray(tumor_slices), np.asarray(liver_slices)
    if tumor_slices.ndim != 3 or tumor_slices.shape != liver_slices.shape:
        raise ValueError(f"need (N, H, W) tumor and liver slices of one shape, got {tumor_slices.shape}, "
                         f"{liver_slices.shape}")
    count = len(tumor_slices)
    ids = range(count) if slice_ids is None else [int(i) for i in slice_ids]
    if len(ids) != count:
        raise ValueError(f"{len(ids)} slice_ids for {count} slices")
    if images is not None and np.shape(images) != tumor_slices.shape:
        raise ValueError(f"images have shape {np.shape(images)}, the tumor slices {tumor_slices.shape}")
    masks = np.zeros((count * copies, *tumor_slices.shape[1:]), dtype=np.uint8)
    applied: list[list[str]] = []
    for row, slice_id in enumerate(ids):
        dark = None if images is None else darkness(images[row], liver_slices[row])
        for k in range(copies):
            rng = np.random.default_rng([seed, slice_id, k])
            masks[row * copies + k], names = corrupt(tumor_slices[row], liver_slices[row], settings, rng, dark)
            applied.append(names)
    return masks, np.repeat(np.arange(count), copies), applied
