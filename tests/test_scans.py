"""Reading CT scans in any orientation and writing masks back in their own grid (aslseg/data/scans.py)."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from nibabel import orientations

from aslseg.data.lits import CaseFiles, load_case
from aslseg.data.scans import ScanError, load_scan, scan_files
from tests.conftest import tiny_case


def oriented_affine(codes: str, zooms=(0.7, 0.9, 2.5), origin=(10.0, -20.0, 30.0)) -> np.ndarray:
    """A voxel-to-world affine whose axes point along `codes` (e.g. "LPS") with the given voxel sizes."""
    affine = np.eye(4)
    affine[:3, :3] = 0
    for axis, (world, flip) in enumerate(orientations.axcodes2ornt(codes)):
        affine[int(world), axis] = flip * zooms[axis]
    affine[:3, 3] = origin
    return affine


def save(path, data, affine):
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIR", "ASL", "LAI"])
def test_a_scan_reads_like_a_lits_volume_and_writes_back_to_its_own_grid(tmp_path, codes):
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 400, size=(7, 9, 11)).astype(np.int16)
    labels = (hu > 0).astype(np.uint8)
    affine = oriented_affine(codes)
    assert "".join(nib.aff2axcodes(affine)) == codes
    volume = save(tmp_path / "volume-0.nii.gz", hu, affine)
    segmentation = save(tmp_path / "segmentation-0.nii.gz", labels, affine)
    scan = load_scan(volume)
    case = load_case(CaseFiles(0, volume, segmentation))
    np.testing.assert_array_equal(scan.hu, case.hu)  # the same display order as the workflow's volumes
    assert scan.spacing == pytest.approx(case.spacing)
    np.testing.assert_array_equal(scan.to_native(scan.hu), hu)
    np.testing.assert_array_equal(scan.to_display(labels), case.labels)
    scan.write_native(tmp_path / "mask.nii.gz", case.labels)
    written = nib.load(tmp_path / "mask.nii.gz")
    assert written.shape == hu.shape and np.allclose(written.affine, affine)
    assert nib.aff2axcodes(written.affine) == nib.aff2axcodes(affine)
    assert written.header["sform_code"] > 0 and written.header["qform_code"] > 0
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels)


def test_a_4d_scan_with_one_volume_is_read_as_3d(tmp_path):
    hu, _ = tiny_case()
    hu[0] = -1000  # air: what makes it CT
    path = save(tmp_path / "scan.nii", hu[..., None], np.diag([0.8, 0.8, 2.5, 1.0]))
    assert load_scan(path).native_shape == hu.shape


def bad_files(tmp_path):
    hu, _ = tiny_case()
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    float_hu = hu.astype(np.float32)
    float_hu[3, 4, 5] = np.nan
    truncated = tmp_path / "truncated.nii.gz"
    save(truncated, hu, affine)
    truncated.write_bytes(truncated.read_bytes()[:200])
    not_gzip = tmp_path / "notgzip.nii.gz"
    not_gzip.write_bytes(b"plain text, not a NIfTI")
    return {
        "4D": (save(tmp_path / "four.nii.gz", np.stack([hu, hu], axis=-1), affine), "expected a 3D image"),
        "NaN": (save(tmp_path / "nan.nii.gz", float_hu, affine), "NaN or infinite"),
        "MR-like": (save(tmp_path / "mr.nii.gz", (hu + 1200).astype(np.int16), affine), "does not look like CT"),
        "unit-scaled": (save(tmp_path / "unit.nii.gz", np.clip(hu / 1000, 0, 1).astype(np.float32), affine), "does not look like CT"),
        "truncated": (truncated, "unreadable or truncated"),
        "not gzip": (not_gzip, "unreadable or truncated"),
    }


def test_bad_scans_are_refused_with_the_file_and_the_problem(tmp_path):
    for what, (path, message) in bad_files(tmp_path).items():
        with pytest.raises(ScanError, match=message) as error:
            load_scan(path)
        assert str(path) in str(error.value), what


def test_a_folder_must_hold_nifti_scans_only(tmp_path):
    with pytest.raises(ScanError, match="no .nii or .nii.gz scans"):
        scan_files(tmp_path)
    (tmp_path / ".DS_Store").write_bytes(b"")  # hidden files are skipped
    (tmp_path / "scan.nii.gz").write_bytes(gzip.compress(b""))
    assert [p.name for p in scan_files(tmp_path)] == ["scan.nii.gz"]
    (tmp_path / "notes.txt").write_text("a note")
    with pytest.raises(ScanError, match="notes.txt: not a NIfTI file"):
        scan_files(tmp_path)
    with pytest.raises(ScanError, match="not a directory"):
        scan_files(tmp_path / "missing")
