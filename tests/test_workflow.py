"""Real snakemake runs of the data rules on tiny configs, in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, tiny_case, write_case

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
pytestmark = pytest.mark.workflow

TINY_PHANTOM = {
    "seeds": [0, 1],
    "data": {
        "size": 32,
        "split": {"labeled_min_tumor_ml": 0.05},
        "phantom": {"n_volumes": 10, "matrix": 64, "slice_thickness_mm": [8.0, 10.0]},
    },
}


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    config = {"results_dir": str(workdir / "results"), **config}
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(config_path)]
    result = subprocess.run(command + ["--cores", "2", *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("phantom_run")
    snakemake(workdir, TINY_PHANTOM)
    return workdir


def test_phantom_data_stage_builds_every_artifact(phantom_run):
    results = phantom_run / "results"
    for case in range(10):
        assert (results / f"data/phantom/volume-{case}.nii.gz").is_file()
        assert (results / f"data/phantom/segmentation-{case}.nii.gz").is_file()
        with np.load(results / f"data/prepared/images/case-{case}.npz") as image:
            assert image["image"].shape[1:] == (32, 32)
            assert len(image["spacing"]) == 3
        assert (results / f"data/prepared/labels/case-{case}.npz").is_file()
    summary = pd.read_csv(results / "data/summary.csv")
    assert sorted(summary["case_id"]) == list(range(10))
    splits = [json.loads((results / f"data/splits/seed-{s}.json").read_text()) for s in (0, 1)]
    assert splits[0]["test"] == splits[1]["test"]
    for split in splits:
        members = split["test"] + split["val"] + split["labeled"] + split["unlabeled"]
        assert sorted(members) == list(range(10))
    assert (results / "logs/prepare/case-0.log").is_file()
    assert (results / "benchmarks/prepare/case-0.tsv").is_file()


def test_second_run_does_nothing(phantom_run):
    result = snakemake(phantom_run, TINY_PHANTOM, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr
    assert planned_jobs(phantom_run, TINY_PHANTOM) == {}


def planned_jobs(workdir: Path, config: dict) -> dict[str, int]:
    """Rule -> job count of what `snakemake -n` would run (parsed from its job stats table)."""
    lines = snakemake(workdir, config, "-n", "--quiet", "rules").stdout.splitlines()
    if not any(line.startswith("job ") for line in lines):
        return {}
    table = lines[lines.index(next(line for line in lines if line.startswith("job "))) + 2 :]
    rows = [line.split() for line in table[: table.index(next(line for line in table if line.startswith("total")))]]
    return {rule: int(count) for rule, count in rows}


def test_changing_a_split_setting_reruns_only_the_split(phantom_run):
    config = json.loads(json.dumps(TINY_PHANTOM))
    config["data"]["split"]["labeled"] = 0.5
    assert planned_jobs(phantom_run, config) == {"split": 2, "all": 1}


def test_changing_the_slice_size_reprepares_but_keeps_the_phantom(phantom_run):
    config = json.loads(json.dumps(TINY_PHANTOM))
    config["data"]["size"] = 48
    planned = planned_jobs(phantom_run, config)
    assert planned["prepare"] == 10 and "phantom" not in planned


def test_lint_is_clean(phantom_run):
    result = snakemake(phantom_run, TINY_PHANTOM, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_lits_volume_fails_with_its_name_and_leaves_no_output(tmp_path):
    lits = tmp_path / "lits"
    lits.mkdir()
    for case in range(8):
        hu, labels = tiny_case(tumor=case != 3, seed=case)
        write_case(lits, case, hu, labels)
    broken = lits / "volume-5.nii.gz"
    broken.write_bytes(broken.read_bytes()[:-300])
    config = {"data": {"source": "lits", "lits_dir": str(lits), "size": 16, "split": {"labeled_min_tumor_ml": 0.01}}}
    result = snakemake(tmp_path, config, "--keep-going", check=False)
    assert result.returncode != 0
    assert f"{broken}: unreadable or truncated NIfTI" in result.stderr
    prepared = tmp_path / "results/data/prepared"
    assert not list(prepared.glob("*/case-5.*")), "a failed job must leave no output behind"
    assert (prepared / "images/case-4.npz").is_file()  # the good cases still went through
    assert not list(prepared.rglob(".case-*")), "no temporary files left"


def test_missing_segmentation_stops_before_any_job(tmp_path):
    lits = tmp_path / "lits"
    lits.mkdir()
    hu, labels = tiny_case()
    write_case(lits, 0, hu, labels)
    write_case(lits, 1, hu, labels)
    (lits / "segmentation-1.nii.gz").unlink()
    config = {"data": {"source": "lits", "lits_dir": str(lits)}}
    result = snakemake(tmp_path, config, check=False)
    assert result.returncode != 0
    assert "volume-1.nii.gz: volume without its segmentation" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_wrong_config_type_names_the_key(tmp_path):
    result = snakemake(tmp_path, {"data": {"size": "large"}}, "-n", check=False)
    assert result.returncode != 0
    assert "data.size: 'large' is not of type 'integer'" in result.stdout + result.stderr
