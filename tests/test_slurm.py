"""The workflow on a real SLURM through profiles/slurm (snakemake-executor-plugin-slurm), not a mock.

A private one-node cluster (tests/slurm_cluster.py) with fake GPUs and partitions named after the profile's
runs a tiny config; the test checks that every non-local job was an sbatch job, that GPU rules asked SLURM
for their GPU, that the outputs equal a local `--cores 2` run's, and that a second submission does nothing.
Test-only overrides, on top of the real profile: `squeue` for status checks (the test cluster has no
accounting database, and sacct without one makes the plugin wait forever) and a 2 s first status check.
Deselect with `-m "not slurm"`; skipped (with the reason) only when not root or SLURM cannot be installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from tests import test_workflow
from tests.conftest import REPO
from tests.slurm_cluster import ClusterUnavailable, SlurmCluster, ensure_installed
from tests.test_workflow import SNAKEMAKE, TINY_PHANTOM, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE = REPO / "profiles" / "slurm"
PROFILE_CONFIG = yaml.safe_load((PROFILE / "config.v8+.yaml").read_text())
GPU_RULES = ["ssl_train", "evaluate", "liver_train", "evaluate_end_to_end"]  # rules of CONFIG that request `gpu` when config resources.gpu > 0
HAS_GPU_RULE = (REPO / "rules" / "ssl.smk").exists()
RUN_TIMEOUT = 420  # seconds for one snakemake run through SLURM (the tiny config takes well under a minute)

# The tiny data config of the workflow tests with one seed and 8 cases (each non-local job is one sbatch job),
# as a GPU config: GPU rules must request a GPU, the data rules none.
CONFIG = json.loads(json.dumps(TINY_PHANTOM))
CONFIG["seeds"] = [0]
CONFIG["data"]["phantom"]["n_volumes"] = 8
CONFIG["resources"] = {"gpu": 1}


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        base[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


# Once the workflow has a GPU rule, the workflow tests' tiny Stage I settings (tests/test_workflow.py TINY_SSL:
# keys that put ssl_train in the default target and make it take seconds) join the config.
if HAS_GPU_RULE:
    _merge(CONFIG, json.loads(json.dumps(getattr(test_workflow, "TINY_SSL", {}))))

# Test-only profile overrides: no accounting database here, and a tiny workflow should not wait 40 s.
TEST_OVERRIDES = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
                  "--slurm-keep-successful-logs"]


def profile_partitions() -> dict[str, str]:
    """Rule -> partition the profile sends it to ('*' for the default)."""
    partitions = {"*": PROFILE_CONFIG["default-resources"]["slurm_partition"]}
    for rule, resources in (PROFILE_CONFIG.get("set-resources") or {}).items():
        if "slurm_partition" in resources:
            partitions[rule] = resources["slurm_partition"]
    return partitions


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running private SLURM cluster whose partitions are those the profile names; stopped afterwards."""
    try:
        ensure_installed()
    except ClusterUnavailable as reason:
        pytest.skip(str(reason))
    cluster = SlurmCluster(list(profile_partitions().values()))  # the first, the profile's default, is SLURM's
    cluster.start()
    yield cluster
    cluster.stop()


def slurm_snakemake(cluster: SlurmCluster, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """snakemake with the real SLURM profile (+ test overrides), bounded by `timeout` (SIGINT first, so
    Snakemake cancels its SLURM jobs; SIGKILL 30 s later)."""
    command = ["timeout", "-s", "INT", "-k", "30", str(RUN_TIMEOUT), str(SNAKEMAKE), "-s", str(REPO / "Snakefile"),
               "-d", str(workdir), "--configfile", str(workdir / "config.yaml"), "--profile", str(PROFILE),
               *TEST_OVERRIDES, *args]
    result = subprocess.run(command, capture_output=True, text=True, env=cluster.env, cwd=workdir,
                            timeout=RUN_TIMEOUT + 60)
    if result.returncode != 0:
        raise AssertionError(
            f"snakemake through SLURM exited {result.returncode}{' (timed out)' if result.returncode == 124 else ''}"
            f":\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}\n--- slurmctld.log ---\n{cluster.log()[-3000:]}"
        )
    return result


def jobs_per_rule(output: str, local: bool = False) -> Counter:
    """Jobs per rule in Snakemake's output: `rule X:` / `checkpoint X:` blocks are executor (SLURM) jobs,
    `localrule X:` / `localcheckpoint X:` local ones."""
    prefix = "local" if local else ""
    return Counter(re.findall(rf"^{prefix}(?:rule|checkpoint) (\w+):$", output, re.M))


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The same tiny config run locally (--cores 2) and through SLURM, then submitted to SLURM again."""
    local = tmp_path_factory.mktemp("local_run")
    snakemake(local, CONFIG)

    workdir = tmp_path_factory.mktemp("slurm_run")
    (workdir / "config.yaml").write_text(yaml.safe_dump({"results_dir": str(workdir / "results"), **CONFIG}))
    planned = jobs_per_rule(slurm_snakemake(slurm_cluster, workdir, "-n").stdout)
    before = set(slurm_cluster.jobs())
    start = time.monotonic()
    first = slurm_snakemake(slurm_cluster, workdir)
    seconds = time.monotonic() - start
    remote_jobs, local_jobs = jobs_per_rule(first.stderr), jobs_per_rule(first.stderr, local=True)
    assert remote_jobs + local_jobs == planned, "the run did not do what the dry run planned"
    jobs = {job_id: job for job_id, job in slurm_cluster.jobs().items() if job_id not in before}
    second = slurm_snakemake(slurm_cluster, workdir)
    after = {job_id for job_id in slurm_cluster.jobs() if job_id not in before}
    return {"local": local, "workdir": workdir, "remote_jobs": remote_jobs, "local_jobs": local_jobs, "jobs": jobs,
            "first": first, "second": second, "jobs_after_second": after, "seconds": seconds,
            "cluster": slurm_cluster}


def job_rule(job: dict) -> str:
    match = re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", job["comment"])
    assert match, f"unexpected job comment {job['comment']!r}"
    return match.group(1)


def test_every_non_local_job_was_an_sbatch_job(runs):
    jobs = runs["jobs"]
    print(f"SLURM run of {len(jobs)} jobs took {runs['seconds']:.0f} s")
    assert runs["remote_jobs"]["phantom"] == 8 and runs["remote_jobs"]["prepare"] == 8
    assert Counter(job_rule(job) for job in jobs.values()) == runs["remote_jobs"]
    assert all(job["state"] == "COMPLETED" for job in jobs.values()), jobs
    submitted = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", runs["cluster"].log()))
    assert set(jobs) <= submitted


def test_job_logs_name_their_slurm_job(runs):
    """Each non-local job's own log says which SLURM job ran it ($SLURM_JOB_ID); local rules' logs do not."""
    logs = runs["workdir"] / "results" / "logs"
    logged = {}
    for log in sorted(logs.rglob("*.log")):
        rule = log.relative_to(logs).parts[0].removesuffix(".log")
        ids = re.findall(r"SLURM job (\d+) on ", log.read_text())
        if rule in runs["local_jobs"]:
            assert not ids, f"{log}: a local rule's job ran under SLURM"
        else:
            assert len(ids) == 1, f"{log}: no SLURM job id"
            logged[ids[0]] = rule
    assert set(logged) == set(runs["jobs"])
    assert all(job_rule(runs["jobs"][job_id]) == rule for job_id, rule in logged.items())


def test_jobs_went_to_the_profiles_partitions_with_their_resources(runs):
    partitions = profile_partitions()
    for job in runs["jobs"].values():
        rule = job_rule(job)
        assert job["partition"] == partitions.get(rule, partitions["*"]), job
        if rule not in GPU_RULES:
            assert "gpu" not in job["tres"], f"{rule} must not ask for a GPU: {job}"


@pytest.mark.skipif(not HAS_GPU_RULE, reason="no GPU rule in the workflow yet (rule ssl_train, rules/ssl.smk)")
def test_gpu_rule_carried_its_gpu_request(runs):
    gpu_jobs = [job for job in runs["jobs"].values() if job_rule(job) in GPU_RULES]
    assert gpu_jobs, f"no job of {GPU_RULES} went through SLURM: {runs['jobs']}"
    for job in gpu_jobs:
        assert job["tres"] == "gres:gpu:1", job


def test_outputs_equal_a_local_run(runs):
    local, remote = runs["local"] / "results", runs["workdir"] / "results"
    data = sorted(path.relative_to(local) for path in (local / "data").rglob("*") if path.is_file())
    assert data == sorted(path.relative_to(remote) for path in (remote / "data").rglob("*") if path.is_file())
    for path in data:
        if path.name.endswith(".nii.gz"):  # gzip headers carry a time stamp; compare the voxels
            a, b = nib.load(local / path), nib.load(remote / path)
            assert np.array_equal(a.get_fdata(), b.get_fdata()) and np.array_equal(a.affine, b.affine), path
        elif path.suffix == ".npz":
            with np.load(local / path) as a, np.load(remote / path) as b:
                assert sorted(a.files) == sorted(b.files), path
                for key in a.files:
                    assert np.array_equal(a[key], b[key]), f"{path}:{key}"
        else:  # JSON, CSV: equal up to the run folder they name
            a = (local / path).read_text().replace(str(runs["local"]), "<workdir>")
            b = (remote / path).read_text().replace(str(runs["workdir"]), "<workdir>")
            assert a == b, path


def test_second_submission_does_nothing(runs):
    out = runs["second"].stdout + runs["second"].stderr
    assert "Nothing to be done" in out, out
    assert runs["jobs_after_second"] == set(runs["jobs"]), "the second run submitted jobs"
