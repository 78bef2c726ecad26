"""Rule summary: one row per experiment x round x seed with the test-set means and the cases behind them."""

import json

import pandas as pd

from aslseg.io import atomic_path
from aslseg.workflow import job_logging

COLUMNS = ["dice_mean", "jaccard_mean", "hd95_mm_mean", "asd_mm_mean", "n_cases", "lesion_sensitivity",
           "lesion_precision", "fp_volume_ml_tumor_free", "n_tumor_free", "best_val_dice", "train_s"]

with job_logging(snakemake) as log:
    rows = []
    for row, path in zip(snakemake.params.rows, snakemake.input):
        summary = json.loads(open(path).read())
        rows.append({**row, **{column: summary[column] for column in COLUMNS}})
    table = pd.DataFrame(rows).rename(columns=lambda c: c.removesuffix("_mean"))
    with atomic_path(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    log.info("\n%s", table.to_string(index=False))
