"""Hand-checked cases for aslseg.metrics: overlap, mm distances, empty-mask rules, lesions, summaries."""

import math

import numpy as np
import pandas as pd
import pytest

from aslseg.metrics import case_metrics, distance_penalty_mm, summarize

ISO = (1.0, 1.0, 1.0)


def box(shape=(8, 10, 10), z=(2, 4), y=(2, 8), x=(2, 8)) -> np.ndarray:
    """A bool volume with one axis-aligned box [z0:z1, y0:y1, x0:x1]."""
    mask = np.zeros(shape, dtype=bool)
    mask[z[0]:z[1], y[0]:y[1], x[0]:x[1]] = True
    return mask


def test_identical_masks_are_perfect():
    gt = box()
    row = case_metrics(gt, gt.copy(), (5.0, 3.1, 3.1))
    assert row["dice"] == pytest.approx(1.0)
    assert row["jaccard"] == pytest.approx(1.0)
    assert row["hd95_mm"] == 0.0
    assert row["asd_mm"] == 0.0
    assert not row["gt_empty"] and not row["pred_empty"]


def test_two_boxes_known_overlap():
    # gt 4x4x4 = 64 voxels, pred the same box shifted 2 along x: intersection 4x4x2 = 32
    gt = box(z=(2, 6), y=(2, 6), x=(2, 6))
    pred = box(z=(2, 6), y=(2, 6), x=(4, 8))
    row = case_metrics(pred, gt, ISO)
    assert row["intersection_voxels"] == 32
    assert row["dice"] == pytest.approx(2 * 32 / (64 + 64))
    assert row["jaccard"] == pytest.approx(32 / (64 + 64 - 32))


def test_slice_axis_shift_uses_slice_spacing():
    # A 2-slice slab is all surface. Shifted one slice: half its surface voxels are 5 mm from the
    # other surface, half 0 mm -> hd95 = 5, symmetric asd = 2.5. MONAI must see (sz, sy, sx) in array order.
    gt = box()
    pred = np.roll(gt, 1, axis=0)
    row = case_metrics(pred, gt, (5.0, 1.0, 1.0))
    assert row["hd95_mm"] == pytest.approx(5.0)
    assert row["asd_mm"] == pytest.approx(2.5)


def test_in_plane_shift_uses_in_plane_spacing():
    # Shifted one column: 1 of the 6 columns (12 of 72 voxels) is 1 mm away, the rest 0 mm.
    gt = box()
    pred = np.roll(gt, 1, axis=2)
    row = case_metrics(pred, gt, (5.0, 1.0, 1.0))
    assert row["hd95_mm"] == pytest.approx(1.0)
    assert row["asd_mm"] == pytest.approx(12 / 72)


def test_penalty_is_volume_diagonal_in_mm():
    assert distance_penalty_mm((8, 10, 10), (5.0, 2.0, 1.0)) == pytest.approx(math.sqrt(40**2 + 20**2 + 10**2))


@pytest.mark.parametrize(
    ("gt_has_tumor", "pred_has_tumor", "overlap", "distance"),
    [
        (True, False, 0.0, "penalty"),  # missed case
        (False, True, 0.0, "penalty"),  # false alarm
        (False, False, 1.0, 0.0),  # correct rejection
    ],
)
def test_empty_mask_rules(gt_has_tumor, pred_has_tumor, overlap, distance):
    spacing = (5.0, 3.1, 3.1)
    empty = np.zeros((8, 10, 10), dtype=bool)
    gt = box() if gt_has_tumor else empty
    pred = box() if pred_has_tumor else empty
    row = case_metrics(pred, gt, spacing)
    expected = distance_penalty_mm(gt.shape, spacing) if distance == "penalty" else distance
    assert row["dice"] == overlap and row["jaccard"] == overlap
    assert row["hd95_mm"] == pytest.approx(expected) and row["asd_mm"] == pytest.approx(expected)
    assert row["gt_empty"] is (not gt_has_tumor) and row["pred_empty"] is (not pred_has_tumor)
    assert not any(isinstance(v, float) and math.isnan(v) for v in row.values())


def test_missed_case_scores_worse_than_a_bad_prediction():
    gt = box(shape=(10, 20, 20), z=(0, 2), y=(0, 2), x=(0, 2))
    far = box(shape=(10, 20, 20), z=(8, 10), y=(18, 20), x=(18, 20))
    bad = case_metrics(far, gt, (5.0, 1.0, 1.0))
    missed = case_metrics(np.zeros_like(gt), gt, (5.0, 1.0, 1.0))
    assert missed["hd95_mm"] > bad["hd95_mm"] and missed["asd_mm"] > bad["asd_mm"]


def three_lesion_case() -> tuple[np.ndarray, np.ndarray]:
    """GT: 3 lesions. Pred: hits lesions 1 and 2, misses 3, adds one 2x2x2 false blob."""
    gt = np.zeros((10, 20, 20), dtype=bool)
    gt[1:3, 1:4, 1:4] = True  # lesion 1
    gt[1:3, 10:13, 10:13] = True  # lesion 2
    gt[6:8, 1:4, 14:17] = True  # lesion 3, missed
    pred = np.zeros_like(gt)
    pred[1:3, 2:5, 2:5] = True  # overlaps lesion 1
    pred[2:4, 11:12, 11:12] = True  # overlaps lesion 2
    pred[6:8, 15:17, 5:7] = True  # false blob, 8 voxels
    return pred, gt


def test_lesion_counting_and_fp_volume():
    pred, gt = three_lesion_case()
    spacing = (5.0, 2.0, 1.5)
    row = case_metrics(pred, gt, spacing)
    assert (row["gt_lesions"], row["pred_lesions"]) == (3, 3)
    assert row["detected_lesions"] == 2
    assert row["true_pred_lesions"] == 2
    assert row["fp_volume_ml"] == pytest.approx(8 * 5.0 * 2.0 * 1.5 / 1000)
    assert row["gt_volume_ml"] == pytest.approx(54 * 15.0 / 1000)


def test_lesions_touching_at_a_corner_are_one_lesion():
    gt = np.zeros((4, 4, 4), dtype=bool)
    gt[0, 0, 0] = gt[1, 1, 1] = True
    assert case_metrics(gt, gt, ISO)["gt_lesions"] == 1


def test_min_lesion_voxels_ignores_specks():
    pred, gt = three_lesion_case()
    pred[9, 19, 19] = True  # a one-voxel false speck
    assert case_metrics(pred, gt, ISO)["pred_lesions"] == 4
    row = case_metrics(pred, gt, ISO, min_lesion_voxels=2)
    assert row["pred_lesions"] == 3
    assert row["fp_volume_ml"] == pytest.approx(8 / 1000)
    assert row["pred_voxels"] == int(pred.sum())  # voxel-level numbers keep the speck


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        case_metrics(np.zeros((2, 3, 3)), np.zeros((2, 3, 4)), ISO)


def summary_rows() -> list[dict]:
    pred, gt = three_lesion_case()
    empty = np.zeros((8, 10, 10), dtype=bool)
    return [
        case_metrics(pred, gt, ISO),  # tumor case, imperfect
        case_metrics(box(), box(), ISO),  # tumor case, perfect, 1 lesion found
        case_metrics(box(), empty, ISO),  # tumor-free, false alarm of 72 voxels
        case_metrics(empty, empty, ISO),  # tumor-free, correct rejection
    ]


def test_summarize_means_over_tumor_cases_only():
    rows = summary_rows()
    summary = summarize(rows)
    assert summary["n_cases"] == 2 and summary["n_tumor_free"] == 2
    dices = [rows[0]["dice"], 1.0]
    assert summary["dice_mean"] == pytest.approx(np.mean(dices))
    assert summary["dice_std"] == pytest.approx(np.std(dices))
    assert summary["hd95_mm_mean"] == pytest.approx((rows[0]["hd95_mm"] + 0.0) / 2)


def test_summarize_pooled_numbers():
    rows = summary_rows()
    summary = summarize(pd.DataFrame(rows))
    # lesions: case 0 detects 2/3 with 2 of 3 preds true, case 1 1/1, case 2 one false lesion
    assert summary["lesion_sensitivity"] == pytest.approx(3 / 4)
    assert summary["lesion_precision"] == pytest.approx(3 / 5)
    assert summary["fp_volume_ml_tumor_free"] == pytest.approx(72 / 1000)
    # false lesions: case 0's one false of 3, case 2's false alarm (the only lesion on a tumor-free case)
    assert summary["false_lesions"] == 2 and summary["false_lesions_tumor_free"] == 1
    inter = rows[0]["intersection_voxels"] + 72
    voxels = sum(r["gt_voxels"] + r["pred_voxels"] for r in rows)
    assert summary["global_dice"] == pytest.approx(2 * inter / voxels)
    assert not any(isinstance(v, float) and math.isnan(v) for v in summary.values())


def test_summarize_undefined_rates_are_none_not_nan():
    empty = np.zeros((4, 4, 4), dtype=bool)
    summary = summarize([case_metrics(empty, empty, ISO)])
    assert summary["n_cases"] == 0 and summary["dice_mean"] is None and summary["dice_std"] is None
    assert summary["lesion_sensitivity"] is None and summary["lesion_precision"] is None
    assert summary["global_dice"] == 1.0 and summary["fp_volume_ml_tumor_free"] == 0.0
    assert summary["false_lesions"] == 0 and summary["false_lesions_tumor_free"] == 0


def test_the_one_dice_formula_and_its_empty_mask_rule():
    from aslseg.dice import dice_from_counts, pooled_dice, slice_dice

    assert dice_from_counts(3, 8) == 0.75 and dice_from_counts(0, 0) == 1.0 and dice_from_counts(0, 0, empty=None) is None
    assert list(dice_from_counts(np.array([3, 0, 0]), np.array([8, 5, 0]))) == [0.75, 0.0, 1.0]
    with pytest.raises(ValueError, match="number"):
        dice_from_counts(np.array([0]), np.array([0]), empty=None)
    a = np.zeros((2, 4, 4), bool)
    a[0, :2, :2] = True
    b = a.copy()
    b[0, 0, :] = True
    assert pooled_dice(a, b) == pytest.approx(2 * 4 / 10) and pooled_dice(a[1], b[1]) == 1.0
    assert list(slice_dice(a, b)) == [pytest.approx(0.8), 1.0]
    with pytest.raises(ValueError, match="shapes"):
        pooled_dice(a, b[0])
