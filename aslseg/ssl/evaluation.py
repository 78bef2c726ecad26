"""SS(.) on whole volumes: predict every slice, threshold, and score the volume in 3D in mm.

Used for checkpoint selection on val volumes during training and for the test set (rule evaluate)."""

from __future__ import annotations

import numpy as np
import torch

from aslseg.metrics import case_metrics, volume_dice
from aslseg.prepared import Volume
from aslseg.seg2d.network import predict_probabilities


def score_volumes(model: torch.nn.Module, volumes: list[Volume], threshold: float) -> list[dict]:
    """One row of aslseg.metrics.case_metrics per volume, with its case id (predictions kept inside the
    volume's liver region when it has one)."""
    return [
        {"case_id": v.case_id,
         **case_metrics(predict_probabilities(model, v.image, region=v.liver) > threshold, v.tumor, v.spacing)}
        for v in volumes
    ]


def mean_dice_with_tumor(model: torch.nn.Module, volumes: list[Volume], threshold: float = 0.5) -> float:
    """The checkpoint criterion: mean 3D Dice over the volumes that contain tumor (the Dice that
    `score_volumes` reports, without the distances and lesion counts nothing here reads)."""
    dice = [volume_dice(predict_probabilities(model, v.image, region=v.liver) > threshold, v.tumor)
            for v in volumes if v.tumor.any()]
    return float(np.mean(dice)) if dice else float("nan")
