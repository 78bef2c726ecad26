"""Rule predictor: a Stage I model's predictor.json, what aslseg.predict needs to segment a new scan with it."""

import os
from pathlib import Path

from aslseg.io import write_json
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    here = Path(snakemake.output[0]).parent
    record = {
        # relative to this file, so that a results folder can be moved or copied whole
        "tumor_model": os.path.relpath(snakemake.input.tumor_model, here),
        "liver_model": os.path.relpath(snakemake.input.liver_model, here),
        "data": dict(snakemake.params.data),
        "threshold": snakemake.params.threshold,
    }
    write_json(snakemake.output[0], record)
    log.info("%s", record)
