"""Rule score: reliability of every slice still unlabeled in the round (PL3 vs PL1 agreement, optionally SAM's
IoU and the final label's confidence), which slices are accepted, and the threshold used (for rule
calibrated: found on the val volumes' slices, scored the same way and judged against their labels)."""

import numpy as np
import pandas as pd

from aslseg.io import atomic_path, write_json
from aslseg.metrics import CORRECT_SLICE_DICE, slice_dice
from aslseg.prepared import case_id_of
from aslseg.pseudo_labels import read_masks, read_probabilities
from aslseg.select.reliability import SelectSettings, calibrate_threshold, score_slices, select
from aslseg.workflow import job_logging


def slice_confidence(probability: np.ndarray, pl1: np.ndarray, pl3: np.ndarray) -> np.ndarray:
    """Per slice, the mean certainty max(p, 1 - p) of the final label's probability over the pixels either
    pseudo label calls tumor (1.0 where both are empty: nothing to be unsure about)."""
    region = (pl1 > 0) | (pl3 > 0)
    certainty = np.maximum(probability, 1 - probability).astype(np.float32)
    counted = region.reshape(len(region), -1).sum(axis=1)
    total = (certainty * region).reshape(len(region), -1).sum(axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), 1.0)


def score_shards(pl1_files: list[str], pl3_files: list[str], component_files: list[str] | None,
                 settings: SelectSettings) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Scores of every slice of some shards' cases, and their final labels (PL3, or what stands for it)."""
    pl1, pl3 = read_masks(pl1_files), read_masks(pl3_files)
    probability = read_probabilities(pl3_files)  # of the final label: AN, SAM or SS
    sam_iou = None
    if component_files is not None:
        components = pd.concat([pd.read_csv(path) for path in component_files])
        iou = components.groupby(["case", "position"])["predicted_iou"].mean()
        sam_iou = {case: np.array([iou.get((case, p), np.nan) for p in range(len(mask))]) for case, mask in pl1.items()}
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


with job_logging(snakemake) as log:
    settings = SelectSettings.from_config(snakemake.params.select)
    inputs = snakemake.input
    components = inputs.components if "components" in inputs.keys() else None
    scores, _ = score_shards(inputs.pl1, inputs.pl3, components, settings)
    if "labeled_list" in inputs.keys():  # slices accepted in earlier rounds are labeled now
        listed = pd.read_csv(inputs.labeled_list)
        listed = pd.MultiIndex.from_frame(listed[["case", "position"]].astype(np.int64))
        scores = scores[~pd.MultiIndex.from_frame(scores[["case", "position"]]).isin(listed)].reset_index(drop=True)
    calibration = {"rule": settings.rule, "threshold": settings.threshold if settings.rule == "threshold" else None}
    if settings.rule == "calibrated":
        val_scores, val_final = score_shards([inputs.val_pl1], [inputs.val_pl3],
                                             [inputs.val_components] if components is not None else None, settings)
        right = val_right(val_scores, val_final, inputs.val_labels)
        calibration = {"rule": settings.rule, **calibrate_threshold(
            val_scores, right, settings.precision, settings.min_val_slices, settings.accept_empty)}
        log.info("calibrated on %d eligible val slices (%d right): threshold %s, %d val slices accepted, %d right",
                 calibration["val_eligible"], calibration["val_right"], calibration["threshold"],
                 calibration["val_accepted"], calibration["val_accepted_right"])
    threshold = calibration["threshold"] if settings.rule == "calibrated" else settings.threshold
    scores = select(scores, settings.rule, threshold, settings.fraction, settings.accept_empty)
    with atomic_path(snakemake.output.scores) as tmp:
        scores.to_csv(tmp, index=False, float_format="%.5g")
    write_json(snakemake.output.calibration, {**calibration, "accepted": int(scores["accepted"].sum()),
                                              "scored": int(len(scores))})
    log.info("%d of %d slices accepted (%s)", scores["accepted"].sum(), len(scores), settings.rule)
