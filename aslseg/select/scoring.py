"""The inputs of reliability scoring, read from a round's artifacts: every slice's score (`score_shards`, from
its PL1 and final-label shards and SAM's per-component IoUs), the final label's confidence, and, for the
calibrated rule on the val volumes only, whether each scored slice's final label is right (`val_right`).

The score itself (agreement, weights, which slices are accepted) is aslseg/select/reliability.py's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aslseg.dice import slice_dice
from aslseg.metrics import CORRECT_SLICE_DICE
from aslseg.prepared import case_id_of
from aslseg.pseudo_labels import read_masks, read_probabilities
from aslseg.select.reliability import SelectSettings, score_slices


def slice_confidence(probability: np.ndarray, pl1: np.ndarray, pl3: np.ndarray) -> np.ndarray:
    """Per slice, the mean certainty max(p, 1 - p) of the final label's probability over the pixels either
    pseudo label calls tumor (1.0 where both are empty: nothing to be unsure about)."""
    region = (pl1 > 0) | (pl3 > 0)
    certainty = np.maximum(probability, 1 - probability).astype(np.float32)
    counted = region.reshape(len(region), -1).sum(axis=1)
    total = (certainty * region).reshape(len(region), -1).sum(axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), 1.0)


def sam_iou_per_slice(component_files: list[str], shapes: dict[int, int]) -> dict[int, np.ndarray]:
    """Per slice of every case (`shapes`: case -> slices), the mean predicted IoU of SAM's masks for the
    slice's PL1 components (sam_predict's component tables), NaN where SAM was not prompted."""
    components = pd.concat([pd.read_csv(path) for path in component_files])
    iou = components.groupby(["case", "position"])["predicted_iou"].mean()
    return {case: np.array([iou.get((case, p), np.nan) for p in range(n)]) for case, n in shapes.items()}


def score_shards(pl1_files: list[str], pl3_files: list[str], component_files: list[str] | None,
                 settings: SelectSettings) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Scores of every slice of some shards' cases, and their final labels (PL3, or what stands for it)."""
    pl1, pl3 = read_masks(pl1_files), read_masks(pl3_files)
    probability = read_probabilities(pl3_files)  # of the final label: AN, SAM or SS
    sam_iou = None
    if component_files is not None:
        sam_iou = sam_iou_per_slice(component_files, {case: len(mask) for case, mask in pl1.items()})
    confidence = {case: slice_confidence(probability[case].astype(np.float32), pl1[case], pl3[case]) for case in pl1}
    return score_slices(pl1, pl3, sam_iou=sam_iou, confidence=confidence, weights=settings.weights), pl3


def val_right(scores: pd.DataFrame, final: dict[int, np.ndarray], label_files: list[str]) -> np.ndarray:
    """Per scored val slice: is its final label right (slice Dice with the val ground truth)?"""
    truth = {}
    for path in label_files:
        with np.load(path) as label:
            truth[case_id_of(path)] = label["tumor"]
    dice = {case: slice_dice(final[case].astype(bool), truth[case].astype(bool)) for case in final}
    return np.array([dice[case][position] >= CORRECT_SLICE_DICE
                     for case, position in zip(scores["case"], scores["position"])], dtype=bool)
