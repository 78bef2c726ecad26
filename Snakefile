# aslseg: ASLseg (semi-supervised liver tumor segmentation with a medical SAM in the loop) as a workflow.
# `snakemake --cores N` builds what `targets` asks for on the data that `data.source` names.
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)  # the aslseg package, also when it is not pip-installed
from aslseg.config import validate_config


configfile: "config.yaml"


validate_config(config, "config")  # snakemake.utils.validate + one-line errors that name the key


wildcard_constraints:
    case=r"\d+",
    seed=r"\d+",
    labeled=r"\d+(\.\d+)?",
    shard=r"\d+",
    run=r"[a-z_]+-[0-9a-f]{10}",
    samrun=r"[a-z_]+-[0-9a-f]{10}",
    embed=r"[0-9a-f]{10}",
    tune=r"[0-9a-f]{10}",


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/ssl.smk"
include: "rules/sam.smk"


rule all:
    input:
        data_summary=f"{RESULTS}/data/summary.csv",
        summary=f"{RESULTS}/summary.csv",
        splits=[split_path(config["data"]["split"]["labeled"], seed) for seed in config["seeds"]],
        stage2=[f"{RESULTS}/stage2_summary.csv"] if STAGE2_ROWS else [],
    default_target: True
