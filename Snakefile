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
    shard=r"\d+|val",  # val: the val volumes, predicted like an unlabeled shard (select.rule calibrated)
    # a Stage I model: round 0 of an SSL run, or round R >= 1 of a loop (rules/runs.smk)
    model=r"ssl/[a-z_]+-[0-9a-f]{10}/seed-\d+|loop/[a-z_]+-[0-9a-f]{10}/seed-\d+/round-[1-9]\d*",
    samrun=r"none|[a-z_]+-[0-9a-f]{10}",
    embed=r"[0-9a-f]{10}",
    tune=r"[0-9a-f]{10}",
    synth=r"[0-9a-f]{10}",
    adapt=r"[0-9a-f]{10}",
    adaptrun=r"none|[0-9a-f]{10}",
    select=r"[0-9a-f]{10}",


include: "rules/common.smk"
include: "rules/runs.smk"
include: "rules/data.smk"
include: "rules/ssl.smk"
include: "rules/sam.smk"
include: "rules/adapt.smk"
include: "rules/select.smk"
include: "rules/liver.smk"
include: "rules/paper.smk"


rule all:
    input:
        data_summary=f"{RESULTS}/data/summary.csv",
        summary=f"{RESULTS}/summary.csv",
        splits=[split_path(config["data"]["split"]["labeled"], seed) for seed in config["seeds"]],
        pseudo_labels=[f"{RESULTS}/pseudo_label_summary.csv"] if LOOP_ROWS else [],
    default_target: True
