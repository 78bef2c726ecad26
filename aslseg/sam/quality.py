"""(Evaluation only: reads hidden tumor labels.) How good the pseudo labels of a round are on the unlabeled
volumes: Dice against the ground truth pooled over all their slices and over the slices that were prompted,
and 3D lesion-level misses and false positives of each pseudo label, so that the stage that removes (or adds)
misdetections can be seen."""

from __future__ import annotations

import numpy as np

from aslseg.metrics import lesion_metrics


def pooled_dice(intersection: int, predicted: int, truth: int) -> float | None:
    """2|P∩G| / (|P| + |G|), None when both are empty (undefined, not perfect)."""
    total = predicted + truth
    return 2 * intersection / total if total else None


def pseudo_label_quality(
    truth: dict[int, np.ndarray], labels: dict[str, dict[int, np.ndarray]], spacing: dict[int, tuple]
) -> dict:
    """`labels` maps a pseudo-label name (pl1, pl2, ...) to {case: (slices, H, W) mask}; `truth` holds the
    same cases' tumor ground truth. Returns, per name, pooled Dice over all slices, pooled Dice over the
    slices where PL1 has tumor (those SAM is prompted on), and lesion counts (26-connected, in 3D)."""
    prompted = {case: labels["pl1"][case].reshape(len(truth[case]), -1).any(axis=1) for case in truth}
    result = {"n_cases": len(truth), "n_slices": int(sum(len(t) for t in truth.values())),
              "n_prompted_slices": int(sum(p.sum() for p in prompted.values()))}
    for name, masks in labels.items():
        counts = np.zeros(6, dtype=np.int64)  # intersection, predicted, truth; and the same on prompted slices
        lesions = {"gt_lesions": 0, "pred_lesions": 0, "detected_lesions": 0, "true_pred_lesions": 0, "fp_volume_ml": 0.0}
        for case, gt in truth.items():
            pred, gt = masks[case].astype(bool), gt.astype(bool)
            if pred.shape != gt.shape:
                raise ValueError(f"case {case}: {name} has shape {pred.shape}, the ground truth {gt.shape}")
            on = prompted[case]
            counts += [np.count_nonzero(pred & gt), pred.sum(), gt.sum(),
                       np.count_nonzero(pred[on] & gt[on]), pred[on].sum(), gt[on].sum()]
            for key, value in lesion_metrics(pred, gt, spacing[case]).items():
                lesions[key] += value
        result[name] = {
            "dice": pooled_dice(*counts[:3]),
            "dice_prompted_slices": pooled_dice(*counts[3:]),
            "missed_lesions": lesions["gt_lesions"] - lesions["detected_lesions"],
            "false_positive_lesions": lesions["pred_lesions"] - lesions["true_pred_lesions"],
            **lesions,
        }
    return result
