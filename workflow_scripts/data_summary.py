"""Rule data_summary: the per-case stats as one table."""

import json

import pandas as pd

from aslseg.io import atomic_path
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    rows = [json.loads(open(path).read()) for path in snakemake.input.stats]
    table = pd.json_normalize(rows).sort_values("case_id")
    with atomic_path(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    log.info("%d cases", len(table))
