"""Rule pseudo_label_summary: one row per ASLseg experiment x seed x round."""

import json

import pandas as pd

from aslseg.io import atomic_path
from aslseg.select.expand import NEGATIVE, PSEUDO
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    table = []
    for row in snakemake.params.rows:
        quality = json.loads(open(row["quality"]).read())
        line = {key: row[key] for key in ("experiment", "seed", "round", "run", "prompt")}
        line["unlabeled_slices"], line["prompted_slices"] = quality["n_unlabeled_slices"], quality["n_prompted_slices"]
        for name in ("pl1", "pl2", "pl3"):
            for key in ("dice_unlabeled", "dice_prompted", "dice_accepted", "missed_lesions", "false_positive_lesions"):
                line[f"{name}_{key}"] = quality[name][key]
        calibration = json.loads(open(row["calibration"]).read())
        line["selection_threshold"] = calibration["threshold"]  # fixed, or found on val (None: nothing accepted)
        line.update(quality["selection"])
        listed = pd.read_csv(row["labeled_list"])
        line["next_round_pseudo_slices"] = int((listed["source"] == PSEUDO).sum())
        line["next_round_negatives"] = int((listed["source"] == NEGATIVE).sum())  # select.negatives
        if row["finetune_report"]:
            report = json.loads(open(row["finetune_report"]).read())
            line["sam_val_dice_zero_shot"] = report["zero_shot"][row["prompt"]]["dice"]
            line["sam_val_dice_fine_tuned"] = report["fine_tuned"][row["prompt"]]["dice"]
        if row["adapt_report"]:
            report = json.loads(open(row["adapt_report"]).read())
            line["an_val_dice_pl2"], line["an_val_dice"] = report["val_dice_pl2"], report["val_dice_an"]
        table.append(line)
    with atomic_path(snakemake.output[0]) as tmp:
        pd.DataFrame(table).to_csv(tmp, index=False, float_format="%.4g")
    log.info("\n%s", pd.DataFrame(table).T.to_string())
