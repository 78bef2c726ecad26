"""Reading LiTS-format data: `volume-N.nii[.gz]` (CT in HU) beside `segmentation-N.nii[.gz]`
(0 background, 1 liver, 2 tumor).

Both the real LiTS copy and the embedded phantom are read through this module, so the phantom exercises the
same checks. Every problem raises DataError naming the file and what is wrong with it.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

FILE_PATTERN = re.compile(r"^(volume|segmentation)-(\d+)\.nii(\.gz)?$")
LABELS = (0, 1, 2)


class DataError(ValueError):
    """An input file is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class CaseFiles:
    case_id: int
    volume: Path
    segmentation: Path


@dataclass(frozen=True)
class CaseArrays:
    """One case in display order: (slices inferior->superior, rows anterior->posterior, cols patient right->left)."""

    hu: np.ndarray  # float32
    labels: np.ndarray  # uint8 in {0, 1, 2}
    spacing: tuple[float, float, float]  # mm along (slices, rows, cols)


def discover_cases(lits_dir: str | Path) -> list[CaseFiles]:
    """Pair every volume with its segmentation; a file without its partner is an error, not a skipped case."""
    lits_dir = Path(lits_dir)
    if not lits_dir.is_dir():
        raise DataError(f"{lits_dir}: not a directory")
    found: dict[tuple[str, int], Path] = {}
    for path in sorted(lits_dir.iterdir()):
        match = FILE_PATTERN.match(path.name)
        if not match:
            continue
        key = (match.group(1), int(match.group(2)))
        if key in found:
            raise DataError(f"{path}: ambiguous, {found[key].name} holds the same {key[0]} of case {key[1]}")
        found[key] = path
    ids = sorted({case_id for _, case_id in found})
    if not ids:
        raise DataError(f"{lits_dir}: no volume-N.nii[.gz] / segmentation-N.nii[.gz] files")
    cases = []
    for case_id in ids:
        volume, segmentation = found.get(("volume", case_id)), found.get(("segmentation", case_id))
        if volume is None:
            raise DataError(f"{segmentation}: segmentation without its volume (volume-{case_id}.nii[.gz] missing)")
        if segmentation is None:
            raise DataError(f"{volume}: volume without its segmentation (segmentation-{case_id}.nii[.gz] missing)")
        cases.append(CaseFiles(case_id, volume, segmentation))
    return cases


def _load_canonical(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Read a 3D NIfTI reoriented to RAS+; returns (array in file dtype, canonical affine, zooms)."""
    try:
        image = nib.load(path)
        image = nib.as_closest_canonical(image)
        # Reading the data is what exposes truncated or corrupt gzip streams.
        array = np.asanyarray(image.dataobj)
    except (OSError, EOFError, zlib.error, ValueError, nib.filebasedimages.ImageFileError) as error:
        raise DataError(f"{path}: unreadable or truncated NIfTI ({type(error).__name__}: {error})") from error
    if array.ndim != 3:
        raise DataError(f"{path}: expected a 3D image, got shape {array.shape}")
    return array, image.affine, tuple(float(z) for z in image.header.get_zooms()[:3])


def _to_display(array: np.ndarray) -> np.ndarray:
    """RAS+ (x right, y anterior, z superior) -> (z, rows anterior->posterior, cols right->left), radiological view."""
    return np.ascontiguousarray(array[::-1, ::-1, :].transpose(2, 1, 0))


def load_case(files: CaseFiles) -> CaseArrays:
    """Load and check one case; raise DataError naming the file on any inconsistency."""
    hu, volume_affine, zooms = _load_canonical(files.volume)
    labels, label_affine, _ = _load_canonical(files.segmentation)
    if hu.shape != labels.shape:
        raise DataError(
            f"{files.segmentation}: shape {labels.shape} does not match {files.volume.name} {hu.shape}"
        )
    if not np.allclose(volume_affine, label_affine, atol=1e-3):
        raise DataError(
            f"{files.segmentation}: affine differs from {files.volume.name}'s "
            f"(max difference {np.abs(volume_affine - label_affine).max():.4g} mm)"
        )
    hu = hu.astype(np.float32, copy=False)
    if not np.isfinite(hu).all():
        raise DataError(f"{files.volume}: contains {np.count_nonzero(~np.isfinite(hu))} NaN or infinite voxels")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.isfinite(labels).all() or not np.equal(np.round(labels), labels).all():
            raise DataError(f"{files.segmentation}: label values must be integers 0, 1 or 2")
    bad = np.setdiff1d(np.unique(labels), LABELS)
    if bad.size:
        raise DataError(f"{files.segmentation}: label values outside {{0,1,2}}: {bad[:10].tolist()}")
    if not np.any(labels):
        raise DataError(f"{files.segmentation}: no liver (labels 1 or 2); slices are selected by the liver mask")
    sx, sy, sz = zooms
    return CaseArrays(_to_display(hu), _to_display(labels.astype(np.uint8)), (sz, sy, sx))
