"""Rule stage2_summary: one row per Stage II experiment x seed."""

import json

import pandas as pd

from aslseg.io import atomic_path
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    table = []
    for row in snakemake.params.rows:
        quality = json.loads(open(row["quality"]).read())
        line = {key: row[key] for key in ("experiment", "seed", "run", "sam_run", "prompt")}
        line["prompted_slices"] = quality["n_prompted_slices"]
        for name in ("pl1", "pl2"):
            for key in ("dice", "dice_prompted_slices", "missed_lesions", "false_positive_lesions"):
                line[f"{name}_{key}"] = quality[name][key]
        if row["finetune_report"]:
            report = json.loads(open(row["finetune_report"]).read())
            line["val_dice_zero_shot"] = report["zero_shot"][row["prompt"]]["dice"]
            line["val_dice_fine_tuned"] = report["fine_tuned"][row["prompt"]]["dice"]
        table.append(line)
    with atomic_path(snakemake.output[0]) as tmp:
        pd.DataFrame(table).to_csv(tmp, index=False, float_format="%.4g")
    log.info("\n%s", pd.DataFrame(table).to_string())
