"""Per-case 3D tumor segmentation metrics in mm, lesion detection, and test-set summaries.

Inputs are binary masks of one case, shape ``(S, H, W)`` = (slices, rows, cols), and ``spacing`` =
``(sz, sy, sx)`` in mm for those same axes. MONAI's distance metrics take the spacing of the spatial
dimensions in array order, so it is passed through unchanged (a test with 5 mm slices proves it).

Overlap and distance metrics come from MONAI (``compute_dice``, ``compute_iou``,
``compute_hausdorff_distance`` with ``percentile=95``, symmetric ``compute_average_surface_distance``).
MONAI returns NaN (or a misleading 0.0 after aggregation) when a mask is empty, so this module decides
the empty cases itself, here and only here:

============  ==========  =============  ===============  ==================
ground truth  prediction  dice, jaccard  hd95_mm, asd_mm  meaning
============  ==========  =============  ===============  ==================
tumor         tumor       MONAI          MONAI            normal case
tumor         empty       0              penalty          missed case
empty         tumor       0              penalty          false alarm
empty         empty       1              0                correct rejection
============  ==========  =============  ===============  ==================

``penalty`` is the diagonal of the case's extent in mm, ``sqrt(sum((shape * spacing) ** 2))``: no two
voxels of the volume are further apart, so a missed case never scores better than a bad prediction.

Lesions are 3D connected components with full 26-connectivity (``scipy.ndimage.label`` with a 3x3x3
structure), so lesions touching only at an edge or a corner count as one. Detection is by overlap, and
by *any* overlap: a GT lesion is *detected* when at least one predicted voxel lies in it; a predicted
component is a *true* lesion when at least one GT voxel lies in it, otherwise it is a false positive and its
volume goes into ``fp_volume_ml``. LiTS also matched lesions by overlap but demanded a minimum overlap
fraction, so our counts are the lenient end (one large blob touching two lesions detects both); dice and
hd95 judge how well the lesions are covered. With ``min_lesion_voxels = k``, components of
fewer than ``k`` voxels are deleted from both masks before the lesion-level analysis (counts, hits and
``fp_volume_ml``); voxel-level metrics and volumes always use the masks as given.

``summarize`` averages dice/jaccard/hd95/asd over cases with tumor in the ground truth only (tumor-free
cases are judged by false-positive volume and lesion precision instead); its rules are in its docstring.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
)
from scipy import ndimage

from aslseg.dice import dice_from_counts

Spacing = tuple[float, float, float]

# Full 26-connectivity in 3D: face, edge and corner neighbours join one lesion.
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)

OVERLAP_DISTANCE_KEYS = ("dice", "jaccard", "hd95_mm", "asd_mm")


# A pseudo-labeled slice is right when its label's Dice with the ground truth reaches this (or both are
# empty): one fixed yardstick for the selection diagnostics and for calibrating select.rule "calibrated" on
# the val volumes, independent of any configured threshold.
CORRECT_SLICE_DICE = 0.5


def _check_inputs(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, Spacing]:
    """Turn masks into bool arrays and fail loudly on shapes or spacings that would give wrong mm."""
    pred = np.asarray(pred).astype(bool, copy=False)
    gt = np.asarray(gt).astype(bool, copy=False)
    if pred.ndim != 3 or pred.shape != gt.shape:
        raise ValueError(f"pred and gt must be 3D (S, H, W) of equal shape, got {pred.shape} and {gt.shape}")
    if len(spacing) != 3 or not all(float(s) > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive mm values (sz, sy, sx), got {spacing}")
    return pred, gt, (float(spacing[0]), float(spacing[1]), float(spacing[2]))


def distance_penalty_mm(shape: Sequence[int], spacing: Spacing) -> float:
    """Diagonal of the volume in mm: the largest possible distance, used when a distance is undefined."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


def voxel_volume_ml(spacing: Spacing) -> float:
    """mm^3 per voxel / 1000 = ml per voxel."""
    return float(np.prod(spacing)) / 1000.0


def _as_batch(mask: np.ndarray) -> torch.Tensor:
    """MONAI wants (batch, channel, *spatial); one case with one tumor channel."""
    return torch.from_numpy(mask)[None, None]


def _monai_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Spacing) -> dict[str, float]:
    """MONAI overlap and surface-distance metrics; only called when both masks are non-empty."""
    y_pred, y = _as_batch(pred).float(), _as_batch(gt).float()
    per_case_spacing = [list(spacing)]  # one spacing per batch item, spatial dims in array order
    with warnings.catch_warnings():
        # MONAI 1.6 passes its own deprecated argument internally; nothing for callers to act on.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        hd95 = compute_hausdorff_distance(
            y_pred, y, include_background=True, percentile=95, spacing=per_case_spacing
        )
        asd = compute_average_surface_distance(
            y_pred, y, include_background=True, symmetric=True, spacing=per_case_spacing
        )
    return {
        "dice": float(compute_dice(y_pred, y, include_background=True).item()),
        "jaccard": float(compute_iou(y_pred, y, include_background=True).item()),
        "hd95_mm": float(hd95.item()),
        "asd_mm": float(asd.item()),
    }


def volume_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """The Dice of `overlap_distance_metrics` alone (same empty-mask rules, same MONAI value): checkpoint
    selection reads only this, and the surface distances and lesion labelling cost far more than it."""
    pred, gt = np.asarray(pred).astype(bool, copy=False), np.asarray(gt).astype(bool, copy=False)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have equal shapes, got {pred.shape} and {gt.shape}")
    pred_empty, gt_empty = not pred.any(), not gt.any()
    if pred_empty or gt_empty:
        return 1.0 if pred_empty and gt_empty else 0.0
    return float(compute_dice(_as_batch(pred).float(), _as_batch(gt).float(), include_background=True).item())


def overlap_distance_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Spacing) -> dict[str, float]:
    """Dice, Jaccard, HD95 and ASD with the module's empty-mask rules (see the module docstring)."""
    pred_empty, gt_empty = not pred.any(), not gt.any()
    if pred_empty and gt_empty:
        return {"dice": 1.0, "jaccard": 1.0, "hd95_mm": 0.0, "asd_mm": 0.0}
    if pred_empty or gt_empty:
        penalty = distance_penalty_mm(gt.shape, spacing)
        return {"dice": 0.0, "jaccard": 0.0, "hd95_mm": penalty, "asd_mm": penalty}
    return _monai_metrics(pred, gt, spacing)


def _drop_small_components(mask: np.ndarray, min_voxels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Label 26-connected lesions, deleting those below ``min_voxels``; returns (mask, labels, count)."""
    labels, count = ndimage.label(mask, structure=CONNECTIVITY)
    if min_voxels > 1 and count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep = sizes >= min_voxels
        keep[0] = False
        remap = np.zeros(count + 1, dtype=labels.dtype)
        remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=labels.dtype)
        labels, count = remap[labels], int(keep.sum())
    return labels > 0, labels, int(count)


def lesion_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Spacing, min_lesion_voxels: int = 1) -> dict:
    """Lesion counts, overlap-based hits and false-positive volume (rules in the module docstring)."""
    pred, pred_labels, n_pred = _drop_small_components(pred, min_lesion_voxels)
    gt, gt_labels, n_gt = _drop_small_components(gt, min_lesion_voxels)
    overlap = pred & gt
    hit_gt = np.unique(gt_labels[overlap])
    hit_pred = np.unique(pred_labels[overlap])
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
    fp_voxels = int(pred_sizes[1:].sum() - pred_sizes[hit_pred].sum())
    return {
        "gt_lesions": n_gt,
        "pred_lesions": n_pred,
        "detected_lesions": int(hit_gt.size),
        "true_pred_lesions": int(hit_pred.size),
        "fp_volume_ml": fp_voxels * voxel_volume_ml(spacing),
    }


def case_metrics(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], min_lesion_voxels: int = 1
) -> dict:
    """All metrics of one case as a flat dict (one CSV row); never NaN.

    ``intersection_voxels`` is included so that ``summarize`` can pool Dice over all tumor voxels.
    """
    pred, gt, spacing = _check_inputs(pred, gt, spacing)
    ml = voxel_volume_ml(spacing)
    gt_voxels, pred_voxels = int(gt.sum()), int(pred.sum())
    return {
        **overlap_distance_metrics(pred, gt, spacing),
        "gt_voxels": gt_voxels,
        "pred_voxels": pred_voxels,
        "intersection_voxels": int(np.count_nonzero(pred & gt)),
        "gt_volume_ml": gt_voxels * ml,
        "pred_volume_ml": pred_voxels * ml,
        **lesion_metrics(pred, gt, spacing, min_lesion_voxels),
        "gt_empty": gt_voxels == 0,
        "pred_empty": pred_voxels == 0,
    }


def _ratio_or_none(numerator: float, denominator: float) -> float | None:
    """A pooled rate, or None when nothing was counted: undefined is reported as such, never as NaN."""
    return float(numerator / denominator) if denominator else None


def _mean_std(values: pd.Series) -> tuple[float | None, float | None]:
    """Mean and population std (ddof=0, defined for a single case); None for no cases."""
    if values.empty:
        return None, None
    return float(values.mean()), float(values.std(ddof=0))


def summarize(rows: list[dict] | pd.DataFrame) -> dict:
    """Test-set summary of ``case_metrics`` rows; every value is a number or None, never NaN.

    - ``{dice,jaccard,hd95_mm,asd_mm}_{mean,std}`` over cases with tumor in the ground truth only;
      ``n_cases`` is how many cases are behind these means. std is the population std (ddof=0).
      No tumor cases -> the means and stds are None.
    - ``lesion_sensitivity`` = sum(detected_lesions) / sum(gt_lesions) and ``lesion_precision`` =
      sum(true_pred_lesions) / sum(pred_lesions), pooled over all cases. A rate with a zero denominator
      is None (undefined, not a perfect 1.0); the counts beside it say why.
    - ``false_lesions`` = sum(pred_lesions - true_pred_lesions) over all cases (the misdetections that
      lesion_precision is a rate of) and ``false_lesions_tumor_free`` = sum(pred_lesions) over the tumor-free
      cases, where every predicted lesion is false.
    - ``fp_volume_ml_tumor_free`` = sum of pred_volume_ml over tumor-free cases, ``n_tumor_free`` = their
      number.
    - ``global_dice`` = 2 * sum(intersection) / (sum(gt_voxels) + sum(pred_voxels)) over all cases; 1.0
      when neither ground truth nor prediction has any tumor voxel (the correct-rejection rule).
    """
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("summarize needs at least one case row")
    if df[list(OVERLAP_DISTANCE_KEYS)].isna().any().any():
        raise ValueError("case rows contain NaN metrics; build them with case_metrics")
    gt_empty = df["gt_empty"].astype(bool)
    tumor = df[~gt_empty]
    summary: dict = {"n_cases": int(len(tumor))}
    for key in OVERLAP_DISTANCE_KEYS:
        summary[f"{key}_mean"], summary[f"{key}_std"] = _mean_std(tumor[key])
    totals = {key: int(df[key].sum()) for key in
              ("gt_lesions", "detected_lesions", "pred_lesions", "true_pred_lesions")}
    summary.update(totals)
    summary["lesion_sensitivity"] = _ratio_or_none(totals["detected_lesions"], totals["gt_lesions"])
    summary["lesion_precision"] = _ratio_or_none(totals["true_pred_lesions"], totals["pred_lesions"])
    summary["false_lesions"] = totals["pred_lesions"] - totals["true_pred_lesions"]
    summary["false_lesions_tumor_free"] = int(df.loc[gt_empty, "pred_lesions"].sum())
    summary["fp_volume_ml_tumor_free"] = float(df.loc[gt_empty, "pred_volume_ml"].sum())
    summary["n_tumor_free"] = int(gt_empty.sum())
    voxel_sum = int(df["gt_voxels"].sum() + df["pred_voxels"].sum())
    summary["global_dice"] = dice_from_counts(int(df["intersection_voxels"].sum()), voxel_sum)
    return summary
