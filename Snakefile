# aslseg: ASLseg (semi-supervised liver tumor segmentation with a medical SAM in the loop) as a workflow.
# `snakemake --cores N` builds what `targets` asks for on the data that `data.source` names.
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)  # the aslseg package, also when it is not pip-installed
from aslseg.artifacts import WILDCARDS
from aslseg.config import validate_config


configfile: "config.yaml"


validate_config(config, "config")  # snakemake.utils.validate + one-line errors that name the key


# Every wildcard's pattern, from the module that names the artifacts (a {model} is round 0 of an SSL run or
# round R >= 1 of a loop; shard "val" is the val volumes, predicted like an unlabeled shard).
wildcard_constraints:
    **WILDCARDS,


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
        data_summary=result(artifacts.DATA_SUMMARY),
        summary=result(artifacts.SUMMARY),
        splits=[PLAN.split_file(config["data"]["split"]["labeled"], seed) for seed in config["seeds"]],
        pseudo_labels=[result(artifacts.PSEUDO_LABEL_SUMMARY)] if LOOP_ROWS else [],
    default_target: True
