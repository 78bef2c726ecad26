"""(Evaluation only: reads hidden tumor labels.) How good a round's pseudo labels are on the unlabeled
volumes, and how good its selection is: Dice of PL1, PL2 and PL3 against the ground truth pooled over all
slices and over slice subsets (prompted, accepted, rejected), 3D lesion-level misses and false positives of
each, and the precision of the selection. These show which stage removes (or adds) misdetections -- SAM grows
under-segmented lesions but cannot delete a false-positive component; AN and the thresholding should."""

from __future__ import annotations

import numpy as np

from aslseg.dice import dice_from_counts, slice_dice
from aslseg.metrics import CORRECT_SLICE_DICE, lesion_metrics


def pooled_dice(intersection: int, predicted: int, truth: int) -> float | None:
    """Dice from the pooled counts of a slice subset, None when both are empty (undefined, not perfect)."""
    return dice_from_counts(intersection, predicted + truth, empty=None)


def pseudo_label_quality(
    truth: dict[int, np.ndarray],
    labels: dict[str, dict[int, np.ndarray]],
    spacing: dict[int, tuple],
    subsets: dict[str, dict[int, np.ndarray]] | None = None,
) -> dict:
    """`labels` maps a pseudo-label name (pl1, pl2, pl3) to {case: (slices, H, W) mask}; `truth` holds the
    same cases' tumor ground truth; `subsets` maps a subset name to {case: (slices,) bool}. Returns per
    pseudo label: pooled Dice over all slices and over each subset, and lesion counts (26-connected, 3D)."""
    subsets = subsets or {}
    result = {"n_cases": len(truth), "n_slices": int(sum(len(t) for t in truth.values()))}
    result.update({f"n_{name}_slices": int(sum(s.sum() for s in subset.values())) for name, subset in subsets.items()})
    for name, masks in labels.items():
        counts = {subset: np.zeros(3, dtype=np.int64) for subset in ["all", *subsets]}
        lesions = {"gt_lesions": 0, "pred_lesions": 0, "detected_lesions": 0, "true_pred_lesions": 0, "fp_volume_ml": 0.0}
        for case, gt in truth.items():
            pred, gt = masks[case].astype(bool), gt.astype(bool)
            if pred.shape != gt.shape:
                raise ValueError(f"case {case}: {name} has shape {pred.shape}, the ground truth {gt.shape}")
            on = {"all": np.ones(len(gt), dtype=bool), **{s: subsets[s][case] for s in subsets}}
            for subset, rows in on.items():
                counts[subset] += [np.count_nonzero(pred[rows] & gt[rows]), pred[rows].sum(), gt[rows].sum()]
            for key, value in lesion_metrics(pred, gt, spacing[case]).items():
                lesions[key] += value
        result[name] = {
            "dice": pooled_dice(*counts["all"]),
            **{f"dice_{subset}": pooled_dice(*counts[subset]) for subset in subsets},
            "missed_lesions": lesions["gt_lesions"] - lesions["detected_lesions"],
            "false_positive_lesions": lesions["pred_lesions"] - lesions["true_pred_lesions"],
            **lesions,
        }
    return result


def selection_precision(truth: dict[int, np.ndarray], label: dict[int, np.ndarray], accepted: dict[int, np.ndarray]) -> dict:
    """Of the accepted slices, how many carry a pseudo label that is right (slice Dice with the ground truth
    >= CORRECT_SLICE_DICE, both-empty counting as right), and how many of them hold tumor at all."""
    right = n = with_tumor = 0
    for case, gt in truth.items():
        rows = accepted[case]
        gt_rows = gt[rows].astype(bool)
        right += int((slice_dice(label[case][rows].astype(bool), gt_rows) >= CORRECT_SLICE_DICE).sum())
        n += int(rows.sum())
        with_tumor += int(gt_rows.any(axis=(1, 2)).sum())
    return {"accepted_slices": n, "accepted_with_tumor": with_tumor, "correct_accepted": right,
            "selection_precision": right / n if n else None}
