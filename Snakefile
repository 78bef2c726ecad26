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


include: "rules/common.smk"
include: "rules/data.smk"


rule all:
    input:
        data_summary=f"{RESULTS}/data/summary.csv",
        splits=expand(f"{RESULTS}/data/splits/seed-{{seed}}.json", seed=config["seeds"]),
    default_target: True
