"""Rule evaluate_pseudo_labels (reads the unlabeled volumes' hidden labels: evaluation only): Dice and lesion
counts of PL1, PL2 and PL3 against the ground truth, on all slices of the unlabeled volumes and on the round's
unlabeled, prompted, accepted and rejected slices, and the precision of the selection."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import numpy as np
import pandas as pd

from aslseg.diagnostics import pseudo_label_quality, selection_precision
from aslseg.io import write_json
from aslseg.prepared import PreparedFiles
from aslseg.pseudo_labels import read_masks

with job_logging(snakemake) as log:
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    volumes = {case: files.volume(case) for case in sorted(files.images)}
    truth = {case: volume.tumor for case, volume in volumes.items()}
    labels = {name: read_masks(getattr(snakemake.input, name)) for name in ("pl1", "pl2", "pl3")}
    scores = pd.read_csv(snakemake.input.scores)  # the round's unlabeled slices (earlier rounds' picks are labeled)
    scored = {case: np.zeros(len(t), dtype=bool) for case, t in truth.items()}
    accepted = {case: np.zeros(len(t), dtype=bool) for case, t in truth.items()}
    for row in scores.itertuples():
        scored[row.case][row.position] = True
        accepted[row.case][row.position] = bool(row.accepted)
    subsets = {
        "unlabeled": scored,
        "prompted": {case: labels["pl1"][case].reshape(len(t), -1).any(axis=1) & scored[case] for case, t in truth.items()},
        "accepted": accepted,
        "rejected": {case: scored[case] & ~rows for case, rows in accepted.items()},
    }
    quality = pseudo_label_quality(truth, labels, {case: v.spacing for case, v in volumes.items()}, subsets)
    quality["selection"] = selection_precision(truth, labels["pl3"], accepted)
    write_json(snakemake.output[0], quality)
    for name in labels:
        log.info("%s: Dice %s (accepted slices %s), missed %d, false-positive lesions %d", name, quality[name]["dice"],
                 quality[name]["dice_accepted"], quality[name]["missed_lesions"], quality[name]["false_positive_lesions"])
    log.info("selection: %s", quality["selection"])
