"""Every job of a target's DAG as JSON: rule, wildcards, inputs, outputs, params, log. Two snapshots of the same
folder, taken before and after a change that should move code only (a refactoring of the rule files or of
aslseg/artifacts.py), must be equal: then every job reads what it read and writes where it wrote, so the
change can rename or rerun nothing. Run it in a folder whose checkpoints (data stage, splits) exist, so the
DAG is expanded past them:

    .venv/bin/python benchmarks/dag_snapshot.py --directory . [--configfile extra.yaml] [target ...] > dag.json
    diff <(jq -S . before.json) <(jq -S . after.json)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings


def plain(value):
    """Params as JSON can hold them (a Namedlist of dicts, numbers, strings)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def snapshot(directory: Path, configfiles: list[Path], targets: list[str]) -> list[dict]:
    snakefile = Path(__file__).resolve().parents[1] / "Snakefile"
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=configfiles),
            snakefile=snakefile,
            workdir=directory,
        )
        workflow_api.dag(dag_settings=DAGSettings(targets=set(targets), forceall=True))
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        jobs = []
        for job in workflow.dag.jobs:
            jobs.append({
                "rule": job.rule.name,
                "wildcards": dict(job.wildcards.items()),
                "input": sorted(str(path) for path in job.input),
                "output": sorted(str(path) for path in job.output),
                "params": plain(dict(job.params.items())),
                "log": sorted(str(path) for path in job.log),
            })
    return sorted(jobs, key=lambda job: (job["rule"], job["output"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", type=Path, default=Path("."))
    parser.add_argument("--configfile", type=Path, action="append", default=[])
    parser.add_argument("targets", nargs="*", default=["all"])
    args = parser.parse_args()
    configfiles = [Path(__file__).resolve().parents[1] / "config.yaml", *[p.resolve() for p in args.configfile]]
    jobs = snapshot(args.directory.resolve(), configfiles, args.targets)
    json.dump(jobs, sys.stdout, indent=1, sort_keys=True)
    print(f"{len(jobs)} jobs", file=sys.stderr)


if __name__ == "__main__":
    main()
