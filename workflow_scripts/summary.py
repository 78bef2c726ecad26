"""Rule summary: one row per experiment x round x seed with the test-set means and the cases behind them, with
the ground-truth liver (the paper's protocol) and end to end with the predicted liver (`*_predicted_liver`)."""

import json

import pandas as pd

from aslseg.io import atomic_path
from aslseg.workflow import job_logging

COLUMNS = ["dice_mean", "jaccard_mean", "hd95_mm_mean", "asd_mm_mean", "n_cases", "lesion_sensitivity",
           "lesion_precision", "false_lesions", "false_lesions_tumor_free", "fp_volume_ml_tumor_free", "n_tumor_free",
           "best_val_dice", "train_s"]
END_TO_END = ["dice_mean", "hd95_mm_mean", "lesion_sensitivity", "lesion_precision", "fp_volume_ml_tumor_free"]

with job_logging(snakemake) as log:
    rows = []
    for row, path, end_to_end in zip(snakemake.params.rows, snakemake.input.summaries, snakemake.input.end_to_end):
        summary, predicted = json.loads(open(path).read()), json.loads(open(end_to_end).read())
        rows.append({**row, **{column: summary[column] for column in COLUMNS},
                     **{f"{column.removesuffix('_mean')}_predicted_liver": predicted[column] for column in END_TO_END},
                     "liver_dice": predicted["liver_dice_mean"]})
    table = pd.DataFrame(rows).rename(columns=lambda c: c.removesuffix("_mean"))
    with atomic_path(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    log.info("\n%s", table.to_string(index=False))
