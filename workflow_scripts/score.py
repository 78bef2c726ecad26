"""Rule score: reliability of every slice still unlabeled in the round (PL3 vs PL1 agreement, optionally SAM's
IoU and the final label's confidence), which slices are accepted, and the threshold used (for rule
calibrated: found on the val volumes' slices, scored the same way and judged against their labels)."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import json

import pandas as pd

from aslseg.io import atomic_path, write_json
from aslseg.select.reliability import SelectSettings, calibrate_round, select, without_slices
from aslseg.select.scoring import score_shards, val_right

with job_logging(snakemake) as log:
    settings = SelectSettings.from_config(snakemake.params.select)
    inputs = snakemake.input
    components = inputs.components if "components" in inputs.keys() else None
    scores, _ = score_shards(inputs.pl1, inputs.pl3, components, settings)
    if "labeled_list" in inputs.keys():  # slices accepted in earlier rounds are labeled now
        listed = pd.read_csv(inputs.labeled_list)
        scores = without_slices(scores, listed[["case", "position"]].itertuples(index=False))
    calibration = {"rule": settings.rule, "threshold": settings.threshold if settings.rule == "threshold" else None}
    if settings.rule == "calibrated":
        val_scores, val_final = score_shards([inputs.val_pl1], [inputs.val_pl3],
                                             [inputs.val_components] if components is not None else None, settings)
        right = val_right(val_scores, val_final, inputs.val_labels)
        taken = []  # round 0; later rounds: the val slices earlier rounds' thresholds took
        if "previous_calibration" in inputs.keys():
            taken = json.loads(open(inputs.previous_calibration).read())["val_taken"]
        calibration = calibrate_round(val_scores, right, settings, taken)
        log.info("calibrated on %d eligible val slices (%d right; %d taken by earlier rounds): threshold %s, "
                 "%d val slices accepted, %d right", calibration["val_eligible"], calibration["val_right"],
                 len(taken), calibration["threshold"], calibration["val_accepted"], calibration["val_accepted_right"])
    threshold = calibration["threshold"] if settings.rule == "calibrated" else settings.threshold
    scores = select(scores, settings.rule, threshold, settings.fraction, settings.accept_empty)
    with atomic_path(snakemake.output.scores) as tmp:
        scores.to_csv(tmp, index=False, float_format="%.5g")
    write_json(snakemake.output.calibration, {**calibration, "accepted": int(scores["accepted"].sum()),
                                              "scored": int(len(scores))})
    log.info("%d of %d slices accepted (%s)", scores["accepted"].sum(), len(scores), settings.rule)
