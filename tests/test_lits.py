"""Every bad-input case gets a DataError naming the file and the problem."""

import gzip

import numpy as np
import pytest

from aslseg.data.lits import DataError, discover_cases, load_case
from aslseg.io import write_nifti
from tests.conftest import LPS_LIKE_AFFINE, tiny_case, write_case


def test_discovers_pairs_in_both_formats(lits_dir):
    cases = discover_cases(lits_dir)
    assert [c.case_id for c in cases] == [0, 1, 2, 3]
    assert cases[0].volume.name == "volume-0.nii.gz" and cases[1].volume.name == "volume-1.nii"


def test_volume_without_segmentation(lits_dir):
    (lits_dir / "segmentation-2.nii.gz").unlink()
    with pytest.raises(DataError, match=r"volume-2\.nii\.gz: volume without its segmentation"):
        discover_cases(lits_dir)


def test_segmentation_without_volume(lits_dir):
    (lits_dir / "volume-1.nii").unlink()
    with pytest.raises(DataError, match=r"segmentation-1\.nii: segmentation without its volume"):
        discover_cases(lits_dir)


def test_two_copies_of_one_case_are_ambiguous(lits_dir):
    (lits_dir / "volume-0.nii").write_bytes((lits_dir / "volume-1.nii").read_bytes())
    with pytest.raises(DataError, match="ambiguous"):
        discover_cases(lits_dir)


def test_empty_directory(tmp_path):
    with pytest.raises(DataError, match="no volume-N"):
        discover_cases(tmp_path)


def _case(lits_dir, case_id=0):
    return next(c for c in discover_cases(lits_dir) if c.case_id == case_id)


def test_shape_mismatch(lits_dir):
    hu, labels = tiny_case()
    write_nifti(lits_dir / "segmentation-0.nii.gz", labels[:, :, :10].copy(), LPS_LIKE_AFFINE)
    with pytest.raises(DataError, match=r"segmentation-0\.nii\.gz: shape .* does not match"):
        load_case(_case(lits_dir))


def test_affine_mismatch(lits_dir):
    _, labels = tiny_case()
    write_nifti(lits_dir / "segmentation-0.nii.gz", labels, np.diag([-0.8, -0.8, 5.0, 1.0]))
    with pytest.raises(DataError, match=r"segmentation-0\.nii\.gz: affine differs"):
        load_case(_case(lits_dir))


def test_label_values_outside_range(lits_dir):
    _, labels = tiny_case()
    labels[0, 0, 0] = 7
    write_nifti(lits_dir / "segmentation-0.nii.gz", labels, LPS_LIKE_AFFINE)
    with pytest.raises(DataError, match=r"segmentation-0\.nii\.gz: label values outside \{0,1,2\}: \[7\]"):
        load_case(_case(lits_dir))


def test_fractional_labels(lits_dir):
    _, labels = tiny_case()
    labels = labels.astype(np.float32)
    labels[0, 0, 0] = 0.5
    write_nifti(lits_dir / "segmentation-0.nii.gz", labels, LPS_LIKE_AFFINE)
    with pytest.raises(DataError, match="must be integers"):
        load_case(_case(lits_dir))


def test_nan_voxels(lits_dir):
    hu, _ = tiny_case()
    hu = hu.astype(np.float32)
    hu[1, 2, 3] = np.nan
    write_nifti(lits_dir / "volume-0.nii.gz", hu, LPS_LIKE_AFFINE)
    with pytest.raises(DataError, match=r"volume-0\.nii\.gz: contains 1 NaN"):
        load_case(_case(lits_dir))


def test_truncated_gzip(lits_dir):
    path = lits_dir / "volume-0.nii.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"volume-0\.nii\.gz: unreadable or truncated"):
        load_case(_case(lits_dir))


def test_truncated_uncompressed(lits_dir):
    path = lits_dir / "volume-1.nii"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"volume-1\.nii: unreadable or truncated"):
        load_case(_case(lits_dir, 1))


def test_not_a_nifti(lits_dir):
    (lits_dir / "segmentation-0.nii.gz").write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))
    with pytest.raises(DataError, match=r"segmentation-0\.nii\.gz: unreadable"):
        load_case(_case(lits_dir))


def test_no_liver(lits_dir):
    hu, labels = tiny_case()
    write_case(lits_dir, 0, hu, np.zeros_like(labels))
    with pytest.raises(DataError, match="no liver"):
        load_case(_case(lits_dir))


def test_4d_volume(lits_dir):
    hu, labels = tiny_case()
    write_nifti(lits_dir / "volume-0.nii.gz", hu[..., None], LPS_LIKE_AFFINE)
    with pytest.raises(DataError, match="expected a 3D image"):
        load_case(_case(lits_dir))
