"""CT scans as NIfTI files: reading one in any orientation into the display order every stage works in, and
writing a mask back in the file's own voxel grid, so that it overlays the scan exactly in any viewer.

Display order: (slices inferior->superior, rows anterior->posterior, cols patient right->left), the
radiological view, reached from the file's voxel axes through the closest RAS+ orientation (nibabel's
`io_orientation`, what `as_closest_canonical` uses). Reorienting permutes and flips axes only -- no
resampling -- so the way back is exact.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations

from aslseg.io import atomic_path

NIFTI_NAME = re.compile(r"^(?P<stem>.+?)\.nii(\.gz)?$")
RAS = orientations.axcodes2ornt("RAS")
# CT in Hounsfield units always holds air (-1000 HU) or padding (-1024, -2048) somewhere; an image whose
# darkest voxel is brighter than this is MR, or CT rescaled to [0, 1] or [0, 255].
CT_MIN_HU_BELOW = -200.0


class ScanError(ValueError):
    """A scan file is missing, unreadable, or not a 3D CT in Hounsfield units."""


def ras_to_display(array: np.ndarray) -> np.ndarray:
    """RAS+ voxel axes (x right, y anterior, z superior) -> display order (as aslseg.data.lits reads LiTS
    volumes; tests/test_scans.py keeps the two equal)."""
    return np.ascontiguousarray(array[::-1, ::-1, :].transpose(2, 1, 0))


def display_to_ras(array: np.ndarray) -> np.ndarray:
    """The inverse of `ras_to_display`."""
    return np.ascontiguousarray(array.transpose(2, 1, 0)[::-1, ::-1, :])


@dataclass(frozen=True)
class Scan:
    """One CT scan in display order, with what it takes to write a mask back into the file's own grid."""

    name: str  # the file name without .nii / .nii.gz
    path: Path
    hu: np.ndarray  # float32 (slices, rows, cols), display order
    spacing: tuple[float, float, float]  # mm along (slices, rows, cols)
    native_shape: tuple[int, int, int]
    affine: np.ndarray  # the file's voxel-to-world affine, (4, 4)
    header: nib.Nifti1Header
    to_ras: np.ndarray  # nibabel orientation transform of the file's axes to RAS+

    def to_display(self, native: np.ndarray) -> np.ndarray:
        """An array in the file's voxel order (e.g. a mask on the scan's grid), in display order."""
        if native.shape != self.native_shape:
            raise ValueError(f"{self.path}: array of shape {native.shape} for a scan of shape {self.native_shape}")
        return ras_to_display(orientations.apply_orientation(native, self.to_ras))

    def to_native(self, display: np.ndarray) -> np.ndarray:
        """A display-order array of this scan's shape, in the file's voxel order."""
        if display.shape != self.hu.shape:
            raise ValueError(f"{self.path}: array of shape {display.shape} for a scan of shape {self.hu.shape}")
        back = orientations.ornt_transform(RAS, self.to_ras)
        return np.ascontiguousarray(orientations.apply_orientation(display_to_ras(display), back))

    def read_on_grid(self, path: str | Path) -> np.ndarray:
        """Another image on this scan's grid (a mask, a label map), checked to share its shape and affine and
        to be finite, in display order."""
        image = load_nifti_3d(path)
        if image.shape != self.native_shape:
            raise ScanError(f"{path}: shape {image.shape} does not match {self.path.name} {self.native_shape}")
        if not np.allclose(image.affine, self.affine, atol=1e-3):
            raise ScanError(f"{path}: affine differs from {self.path.name}'s "
                            f"(max difference {np.abs(image.affine - self.affine).max():.4g} mm)")
        data = np.asanyarray(image.dataobj)
        if not np.isfinite(data).all():
            raise ScanError(f"{path}: contains NaN or infinite voxels")
        return self.to_display(data)

    def write_native(self, path: str | Path, display: np.ndarray) -> None:
        """Write a display-order array as NIfTI in the file's grid: same shape, affine, qform and sform."""
        write_like(path, self.to_native(display), self.header, self.affine)


def write_like(path: str | Path, array: np.ndarray, header: nib.Nifti1Header, affine: np.ndarray) -> None:
    """A NIfTI-1 with the geometry of `header` / `affine` and the array's own dtype (no intensity scaling),
    atomically."""
    header = nib.Nifti1Header.from_header(header)
    image = nib.Nifti1Image(array, affine, header)
    image.set_qform(affine, code=int(header["qform_code"]) or 1)
    image.set_sform(affine, code=int(header["sform_code"]) or 1)
    image.header.set_data_dtype(array.dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:
        nib.save(image, tmp)


def scan_name(path: str | Path) -> str:
    """The name of a scan file without .nii / .nii.gz; ScanError for any other file."""
    match = NIFTI_NAME.match(Path(path).name)
    if not match:
        raise ScanError(f"{path}: not a NIfTI file (.nii or .nii.gz)")
    return match.group("stem")


def scan_files(directory: str | Path) -> list[Path]:
    """The NIfTI scans of a folder, sorted; hidden files are skipped, any other file is an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ScanError(f"{directory}: not a directory")
    paths = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    for path in paths:
        scan_name(path)
        if not path.is_file():
            raise ScanError(f"{path}: not a file")
    if not paths:
        raise ScanError(f"{directory}: no .nii or .nii.gz scans")
    return paths


def load_nifti_3d(path: str | Path) -> nib.Nifti1Image:
    """A NIfTI image with its data read (which exposes truncated gzip streams), squeezed to 3D when its
    further axes have length 1; ScanError naming the file otherwise."""
    path = Path(path)
    try:
        image = nib.load(path)
        data = np.asanyarray(image.dataobj)
    except (OSError, EOFError, zlib.error, ValueError, nib.filebasedimages.ImageFileError) as error:
        raise ScanError(f"{path}: unreadable or truncated NIfTI ({type(error).__name__}: {error})") from error
    if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
        data = data.reshape(data.shape[:3])
    if data.ndim != 3:
        raise ScanError(f"{path}: expected a 3D image, got shape {data.shape}")
    return nib.Nifti1Image(data, image.affine, nib.Nifti1Header.from_header(image.header))


def load_scan(path: str | Path) -> Scan:
    """Read and check one CT scan (any orientation, spacing, size; integer or float HU)."""
    path = Path(path)
    name = scan_name(path)
    image = load_nifti_3d(path)
    data = np.asanyarray(image.dataobj)
    hu = data.astype(np.float32, copy=False)
    if not np.isfinite(hu).all():
        raise ScanError(f"{path}: contains {np.count_nonzero(~np.isfinite(hu))} NaN or infinite voxels")
    if hu.min() > CT_MIN_HU_BELOW:
        raise ScanError(
            f"{path}: does not look like CT in Hounsfield units (darkest voxel {hu.min():.4g}, no air below "
            f"{CT_MIN_HU_BELOW:g} HU): MR, or an image rescaled to [0, 1] or [0, 255]?"
        )
    to_ras = orientations.io_orientation(image.affine)
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=float)
    ras_zooms = np.empty(3)
    ras_zooms[to_ras[:, 0].astype(int)] = zooms  # axis i of the file becomes RAS axis to_ras[i, 0]
    sx, sy, sz = (float(z) for z in ras_zooms)
    return Scan(name, path, ras_to_display(orientations.apply_orientation(hu, to_ras)), (sz, sy, sx),
                tuple(int(n) for n in data.shape), image.affine.copy(), image.header, to_ras)
