"""Rule split: volume-level test / val / labeled / unlabeled sets for one labeled fraction and run seed."""

import json

from aslseg.data.split import VolumeStats, split_volumes
from aslseg.io import write_json
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    volumes = []
    for path in snakemake.input.stats:
        stats = json.loads(open(path).read())
        volumes.append(VolumeStats(stats["case_id"], stats["tumor_ml"]))
    cfg = {**snakemake.params.split, "labeled": float(snakemake.wildcards.labeled)}
    split = split_volumes(
        volumes,
        test=cfg["test"],
        test_tumor_free=cfg["test_tumor_free"],
        val=cfg["val"],
        labeled=cfg["labeled"],
        labeled_min_tumor_ml=cfg["labeled_min_tumor_ml"],
        split_seed=cfg["seed"],
        run_seed=int(snakemake.wildcards.seed),
    )
    split["params"] = {**cfg, "run_seed": int(snakemake.wildcards.seed)}
    write_json(snakemake.output[0], split)
    log.info("%s", split["counts"])
