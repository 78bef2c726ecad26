# Helpers shared by all rule files -- where things live, which cases exist, the code a job depends on.
import json
from pathlib import Path

from aslseg import artifacts
from aslseg.code_deps import package_modules
from aslseg.config import ConfigError
from aslseg.data.lits import discover_cases

RESULTS = config["results_dir"]
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
DATA = config["data"]
RESOURCES = config["resources"]

ENV = "../envs/aslseg.yaml"  # relative to the rule files


def result(pattern):
    """A file pattern of aslseg/artifacts.py under the results folder; its placeholders stay wildcards."""
    return f"{RESULTS}/{pattern}"


def script_code(script):
    """The package modules that workflow_scripts/<script> runs, read from its imports (aslseg/code_deps.py), as
    inputs: editing one reruns exactly the jobs that import it (a script: directive tracks the script only)."""
    return package_modules(Path(workflow.basedir) / "workflow_scripts" / script, Path(workflow.basedir) / "aslseg")


if DATA["source"] == "phantom":
    CASE_IDS = list(range(DATA["phantom"]["n_volumes"]))

    def raw_files(case):
        return {
            "volume": result(artifacts.PHANTOM_VOLUME.format(case=case)),
            "segmentation": result(artifacts.PHANTOM_SEGMENTATION.format(case=case)),
        }

else:
    # Pairing problems (a volume without its segmentation) stop the workflow here, before any job runs.
    LITS_CASES = {files.case_id: files for files in discover_cases(DATA["lits_dir"])}
    CASE_IDS = sorted(LITS_CASES)

    def raw_files(case):
        files = LITS_CASES[int(case)]
        # ancient(): raw data is read in place; a touched timestamp alone must not redo everything.
        return {"volume": ancient(str(files.volume)), "segmentation": ancient(str(files.segmentation))}


def raw_case_files(wildcards):
    """The LiTS-format volume and segmentation of the {case} wildcard's case."""
    return raw_files(wildcards.case)


# ---- resources --------------------------------------------------------------------------------------------
# Rules ask for portable resources only (mem_mb, runtime, gpu); a SLURM profile turns them into sbatch options
# and adds the site's partition / account / GPU model. Memory grows with each retry (profile: retries), so a
# job killed for memory asks for more the next time.


def gpu_resources():
    """{"gpu": N} when the config asks for GPUs (resources.gpu: N > 0), {} on the CPU default -- unpack it into
    the resources of a rule that a GPU speeds up, so a CPU config requests no GPU anywhere."""
    return {"gpu": RESOURCES["gpu"]} if RESOURCES["gpu"] > 0 else {}


def job_resources(kind, gpu=False):
    """mem_mb and runtime of a job of `kind` (data, train, infer: the sections of config `resources`), plus the
    GPU request when `gpu` is true. Use as `resources: **job_resources("train", gpu=True)`."""
    section = RESOURCES[kind]
    factor = RESOURCES["retry_memory_factor"]

    def mem_mb(wildcards, attempt):
        return int(section["mem_mb"] * factor ** (attempt - 1))

    return {"mem_mb": mem_mb, "runtime": section["runtime"], **(gpu_resources() if gpu else {})}


def job_threads(kind):
    """CPU threads of a train or infer job (resources.<kind>.threads)."""
    return RESOURCES[kind]["threads"]

