import numpy as np
import pytest

from aslseg.data.lits import discover_cases, load_case
from aslseg.data.prepare import area_resize_matrix, crop_stack, liver_slice_range, prepare_case, resize_labels, resize_stack, window
from aslseg.io import write_nifti
from tests.conftest import tiny_case


def test_window_maps_level_and_width_to_unit_interval():
    hu = np.array([-1000, -160, 40, 240, 3000], dtype=np.float32)
    np.testing.assert_allclose(window(hu, -160, 240), [0, 0, 0.5, 1, 1])


def test_area_resize_averages_covered_pixels():
    matrix = area_resize_matrix(4, 2)
    np.testing.assert_allclose(matrix, [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(area_resize_matrix(5, 3).sum(axis=1), 1)
    stack = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    np.testing.assert_allclose(resize_stack(stack, 2)[0], [[2.5, 4.5], [10.5, 12.5]])
    constant = np.full((2, 37, 53), 0.3, dtype=np.float32)
    np.testing.assert_allclose(resize_stack(constant, 16), 0.3, rtol=1e-5)


def test_label_resize_takes_the_majority():
    labels = np.zeros((1, 4, 4), dtype=np.uint8)
    labels[0, :2, :2] = 2  # a full output pixel of tumor
    labels[0, 2, 2] = 2  # a quarter of an output pixel: liver/background wins
    labels[0, 2:, 2:][labels[0, 2:, 2:] == 0] = 1
    np.testing.assert_array_equal(resize_labels(labels, 2)[0], [[2, 0], [0, 1]])


def test_slice_range_uses_liver_with_margin():
    labels = np.zeros((12, 4, 4), dtype=np.uint8)
    labels[3:9, 1, 1] = 1
    assert liver_slice_range(labels, 2) == (1, 11)
    assert liver_slice_range(labels, 5) == (0, 12)


def _prepared(directory, case_id=0, size=20, crop="none"):
    case = load_case(next(c for c in discover_cases(directory) if c.case_id == case_id))
    return case, prepare_case(case, (-160, 240), size, 2, crop=crop, crop_margin_mm=2.0)


def test_prepare_keeps_liver_slices_and_effective_spacing(lits_dir):
    case, prepared = _prepared(lits_dir)
    assert case.spacing == pytest.approx((2.5, 0.8, 0.8))
    # liver on slices 3..8 of 12, margin 2 -> 1..10
    np.testing.assert_array_equal(prepared.slice_index, np.arange(1, 11))
    assert prepared.image.shape == prepared.tumor.shape == (10, 20, 20)
    np.testing.assert_allclose(prepared.spacing, [2.5, 1.6, 1.6])
    np.testing.assert_array_equal(prepared.crop_box, [0, 0, 40, 40])
    assert prepared.image.dtype == np.float32 and 0 <= prepared.image.min() and prepared.image.max() <= 1
    assert prepared.tumor.sum() > 0 and np.all(prepared.liver[prepared.tumor == 1] == 1)
    # liver (100 HU) and tumor (40 HU) land on the window's linear map
    assert np.median(prepared.image[prepared.tumor == 1]) == pytest.approx(0.5, abs=0.02)


def test_orientation_is_canonical_whatever_the_storage(tmp_path):
    """The same anatomy stored LPS-like and RAS-like prepares to identical slices, in radiological view."""
    hu, labels = tiny_case(tumor=False)
    marker = (slice(0, 4), slice(0, 6), slice(3, 9))  # small i (patient right), small j (anterior)
    hu[marker] = 250
    lps = np.diag([-0.8, -0.8, 2.5, 1.0])
    ras = lps @ np.array([[-1, 0, 0, 39], [0, -1, 0, 39], [0, 0, 1, 0], [0, 0, 0, 1]])  # flips i and j
    for name, array, seg, affine in [
        ("lps", hu, labels, lps),
        ("ras", hu[::-1, ::-1].copy(), labels[::-1, ::-1].copy(), ras),
    ]:
        (tmp_path / name).mkdir()
        write_nifti(tmp_path / name / "volume-0.nii.gz", array, affine)
        write_nifti(tmp_path / name / "segmentation-0.nii.gz", seg, affine)
    _, from_lps = _prepared(tmp_path / "lps", size=40)
    _, from_ras = _prepared(tmp_path / "ras", size=40)
    np.testing.assert_array_equal(from_lps.image, from_ras.image)
    np.testing.assert_array_equal(from_lps.liver, from_ras.liver)
    # Radiological view: patient right on the image's left, anterior at the top.
    first_liver_slice = 2
    bright = from_lps.image[first_liver_slice] == 1.0
    rows, cols = np.nonzero(bright)
    assert rows.max() < 6 and cols.max() < 4


def test_liver_crop_is_a_square_in_mm_around_the_liver(lits_dir):
    case, prepared = _prepared(lits_dir, size=16, crop="liver")
    # The box liver of tiny_case in display order: rows (anterior->posterior) 8..29, cols (right->left) 5..24,
    # at 0.8 mm; the longer extent is 21 px = 16.8 mm, plus 2 mm each side = 20.8 mm -> 26 px.
    rows = np.flatnonzero(case.labels.any(axis=(0, 2)))
    cols = np.flatnonzero(case.labels.any(axis=(0, 1)))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (8, 29, 5, 24)
    row0, col0, n_rows, n_cols = prepared.crop_box
    assert n_rows == n_cols == 26
    assert row0 <= rows[0] and row0 + n_rows > rows[-1] and col0 <= cols[0] and col0 + n_cols > cols[-1]
    np.testing.assert_allclose(prepared.spacing, [2.5, 0.8 * 26 / 16, 0.8 * 26 / 16])
    assert prepared.tumor.sum() > 0 and prepared.image.shape == (10, 16, 16)


def test_crop_overhanging_the_image_is_padded_with_air():
    stack = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = crop_stack(stack, np.array([-1, 2, 3, 3]), fill=-1024.0)
    np.testing.assert_array_equal(out[0], [[-1024, -1024, -1024], [2, 3, -1024], [6, 7, -1024]])
