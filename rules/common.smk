# Helpers shared by all rule files -- where things live, which cases exist, the code a job depends on.
from pathlib import Path

from aslseg.data.lits import discover_cases

RESULTS = config["results_dir"]
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
DATA = config["data"]

ENV = "../envs/aslseg.yaml"  # relative to the rule files


def package_code(*modules):
    """Package modules a job runs, as inputs: editing them must rerun the job (a script: directive only
    tracks the script itself)."""
    return [f"{workflow.basedir}/aslseg/{module}" for module in modules]


if DATA["source"] == "phantom":
    RAW_DIR = f"{RESULTS}/data/phantom"
    CASE_IDS = list(range(DATA["phantom"]["n_volumes"]))

    def raw_case_files(wildcards):
        return {
            "volume": f"{RAW_DIR}/volume-{wildcards.case}.nii.gz",
            "segmentation": f"{RAW_DIR}/segmentation-{wildcards.case}.nii.gz",
        }

else:
    # Pairing problems (a volume without its segmentation) stop the workflow here, before any job runs.
    LITS_CASES = {files.case_id: files for files in discover_cases(DATA["lits_dir"])}
    RAW_DIR = DATA["lits_dir"]
    CASE_IDS = sorted(LITS_CASES)

    def raw_case_files(wildcards):
        files = LITS_CASES[int(wildcards.case)]
        # ancient(): raw data is read in place; a touched timestamp alone must not redo everything.
        return {"volume": ancient(str(files.volume)), "segmentation": ancient(str(files.segmentation))}
