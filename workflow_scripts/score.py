"""Rule score: reliability of every slice still unlabeled in the round (PL3 vs PL1 agreement, optionally SAM's
IoU and the final label's confidence) and which slices are accepted."""

import numpy as np
import pandas as pd

from aslseg.io import atomic_path, read_case_arrays
from aslseg.select.reliability import SelectSettings, score_slices, select
from aslseg.workflow import job_logging


def slice_confidence(probability: np.ndarray, pl1: np.ndarray, pl3: np.ndarray) -> np.ndarray:
    """Per slice, the mean certainty max(p, 1 - p) of the final label's probability over the pixels either
    pseudo label calls tumor (1.0 where both are empty: nothing to be unsure about)."""
    region = (pl1 > 0) | (pl3 > 0)
    certainty = np.maximum(probability, 1 - probability).astype(np.float32)
    counted = region.reshape(len(region), -1).sum(axis=1)
    total = (certainty * region).reshape(len(region), -1).sum(axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), 1.0)


with job_logging(snakemake) as log:
    settings = SelectSettings.from_config(snakemake.params.select)
    pl1, pl3 = read_case_arrays(snakemake.input.pl1, "mask_"), read_case_arrays(snakemake.input.pl3, "mask_")
    probability = read_case_arrays(snakemake.input.pl3, "probability_")  # of the final label: AN, SAM or SS
    sam_iou = None
    if "components" in snakemake.input.keys():
        components = pd.concat([pd.read_csv(path) for path in snakemake.input.components])
        iou = components.groupby(["case", "position"])["predicted_iou"].mean()
        sam_iou = {case: np.array([iou.get((case, p), np.nan) for p in range(len(mask))]) for case, mask in pl1.items()}
    confidence = {case: slice_confidence(probability[case].astype(np.float32), pl1[case], pl3[case]) for case in pl1}
    scores = score_slices(pl1, pl3, sam_iou=sam_iou, confidence=confidence, weights=settings.weights)
    if "labeled_list" in snakemake.input.keys():  # slices accepted in earlier rounds are labeled now
        listed = pd.read_csv(snakemake.input.labeled_list)
        listed = pd.MultiIndex.from_frame(listed[["case", "position"]].astype(np.int64))
        scores = scores[~pd.MultiIndex.from_frame(scores[["case", "position"]]).isin(listed)].reset_index(drop=True)
    scores = select(scores, settings.rule, settings.threshold, settings.fraction, settings.accept_empty)
    with atomic_path(snakemake.output[0]) as tmp:
        scores.to_csv(tmp, index=False, float_format="%.5g")
    log.info("%d of %d slices accepted (%s)", scores["accepted"].sum(), len(scores), settings.rule)
