"""Rule holdout: the test / val / train volumes, the same for every run seed and labeled fraction."""

import json

from aslseg.data.split import VolumeStats, holdout_volumes
from aslseg.io import write_json
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    volumes = [VolumeStats(s["case_id"], s["tumor_ml"]) for s in (json.loads(open(p).read()) for p in snakemake.input.stats)]
    cfg = snakemake.params.split
    holdout = holdout_volumes(
        volumes,
        test=cfg["test"],
        test_tumor_free=cfg["test_tumor_free"],
        val=cfg["val"],
        labeled_min_tumor_ml=cfg["labeled_min_tumor_ml"],
        split_seed=cfg["seed"],
    )
    holdout["params"] = cfg
    write_json(snakemake.output[0], holdout)
    log.info("%s", holdout["counts"])
