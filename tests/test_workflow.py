"""Real snakemake runs of the data rules on tiny configs, in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import REPO, tiny_case, write_case

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
pytestmark = pytest.mark.workflow

# Stage I settings that make every training take seconds (a tiny network, a few steps).
TINY_SSL = {
    "targets": ["supervised", "bcp"],
    "ssl": {"iterations": 4, "batch_size": 2, "features": [4, 4, 8, 8, 16, 4], "val_every": 2, "uamt_passes": 1},
    "liver": {"size": 32, "iterations": 4, "batch_size": 2, "features": [4, 4, 8, 8, 16, 4], "val_every": 2},
}
TINY_PHANTOM = {
    "seeds": [0, 1],
    "data": {
        "size": 32,
        "split": {"labeled_min_tumor_ml": 0.05},
        "phantom": {"n_volumes": 10, "matrix": 64, "slice_thickness_mm": [8.0, 10.0]},
    },
    "resources": {"infer": {"shards": 2}},  # sharded inference, as on a cluster
    **TINY_SSL,
}


def with_changes(base: dict, changes: dict) -> dict:
    """A copy of a config with changes given as dotted keys, e.g. {"ssl.lr": 0.01}."""
    config = json.loads(json.dumps(base))
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return config


def tiny(**changes) -> dict:
    """TINY_PHANTOM with changes given as dotted keys, e.g. tiny(**{"ssl.lr": 0.01})."""
    return with_changes(TINY_PHANTOM, changes)


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    config = {"results_dir": str(workdir / "results"), **config}
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(config_path)]
    result = subprocess.run(command + ["--cores", "2", *args], capture_output=True, text=True, timeout=timeout)
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
    splits = [json.loads((results / f"data/splits/labeled-0.1/seed-{s}.json").read_text()) for s in (0, 1)]
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


def test_changing_a_split_setting_replans_splits_and_stage1_but_not_the_data(phantom_run):
    planned = planned_jobs(phantom_run, tiny(**{"data.split.test_tumor_free": 0.5}))
    assert planned["split"] == 2 and not {"phantom", "prepare"} & set(planned)


def test_changing_the_slice_size_reprepares_but_keeps_the_phantom(phantom_run):
    planned = planned_jobs(phantom_run, tiny(**{"data.size": 48}))
    assert planned["prepare"] == 10 and "phantom" not in planned


def test_stage1_trains_evaluates_and_summarizes_every_target(phantom_run):
    results = phantom_run / "results"
    summary = pd.read_csv(results / "summary.csv")
    assert sorted(zip(summary["experiment"], summary["seed"])) == [("bcp", 0), ("bcp", 1), ("supervised", 0), ("supervised", 1)]
    assert (summary["round"] == 0).all() and (summary["n_cases"] >= 1).all()
    assert summary[["dice", "jaccard", "hd95_mm", "asd_mm"]].notna().all().all()
    for run in summary["run"]:
        checkpoint = torch.load(results / f"ssl/{run}/seed-0/model.pt", weights_only=True)
        assert checkpoint["ssl"]["iterations"] == 4 and checkpoint["state_dict"]
        # ssl.bf16 is "auto" (the name does not depend on the machine); the job logs and records its choice.
        assert checkpoint["ssl"]["bf16"] == "auto" and isinstance(checkpoint["precision"]["bf16"], bool)
        chosen = "bf16 autocast" if checkpoint["precision"]["bf16"] else "float32"
        assert f"SS(.): {chosen} (auto" in (results / f"logs/ssl_train/ssl/{run}/seed-0.log").read_text()
        cases = pd.read_csv(results / f"ssl/{run}/seed-0/test_cases.csv")
        split = json.loads((results / "data/splits/labeled-0.1/seed-0.json").read_text())
        assert sorted(cases["case_id"]) == split["test"]
        row = summary[(summary["run"] == run) & (summary["seed"] == 0)].iloc[0]  # the misdetection counts shown
        assert row["false_lesions"] == (cases["pred_lesions"] - cases["true_pred_lesions"]).sum()
        assert row["false_lesions_tumor_free"] == cases.loc[cases["gt_empty"].astype(bool), "pred_lesions"].sum()


def test_pseudo_label_1_shards_partition_the_unlabeled_volumes(phantom_run):
    run = pd.read_csv(phantom_run / "results/summary.csv")["run"].iloc[0]
    targets = [phantom_run / f"results/ssl/{run}/seed-0/pl1/shard-{k}.npz" for k in range(4)]  # resources.infer.shards
    snakemake(phantom_run, TINY_PHANTOM, *map(str, targets))
    split = json.loads((phantom_run / "results/data/splits/labeled-0.1/seed-0.json").read_text())
    cases = []
    for target in targets:
        with np.load(target) as pl1:
            shard = sorted(int(key.split("_")[1]) for key in pl1.files if key.startswith("mask_"))
            for case in shard:
                assert pl1[f"mask_{case}"].shape == pl1[f"probability_{case}"].shape
                assert set(np.unique(pl1[f"mask_{case}"])) <= {0, 1}
        cases += shard
    assert sorted(cases) == sorted(split["unlabeled"])  # each unlabeled volume in exactly one shard


def test_an_ssl_setting_retrains_stage1_only(phantom_run):
    assert planned_jobs(phantom_run, tiny(**{"ssl.lr": 0.01})) == {
        "ssl_train": 4, "evaluate": 4, "predictor": 4, "evaluate_end_to_end": 4, "summary": 1, "all": 1}


def test_a_liver_setting_retrains_the_liver_model_and_what_reads_it_only(phantom_run):
    """One liver model per seed's split; Stage I and its ground-truth-liver evaluation stay."""
    assert planned_jobs(phantom_run, tiny(**{"liver.lr": 0.02})) == {
        "liver_train": 2, "predictor": 4, "evaluate_end_to_end": 4, "summary": 1, "all": 1}


def test_a_setting_only_one_method_reads_retrains_that_method_only(phantom_run):
    """The tiny targets are supervised and bcp: UA-MT's passes concern neither, BCP's EMA decay only bcp."""
    assert planned_jobs(phantom_run, tiny(**{"ssl.uamt_passes": 7})) == {}
    assert planned_jobs(phantom_run, tiny(**{"ssl.ema_decay": 0.9})) == {
        "ssl_train": 2, "evaluate": 2, "predictor": 2, "evaluate_end_to_end": 2, "summary": 1, "all": 1}


def test_experiments_with_identical_settings_share_their_model(phantom_run):
    experiments = {name: {"ssl": {"method": method}, "loop": {"rounds": 0}} for name, method in
                   [("supervised", "supervised"), ("bcp", "bcp"), ("bcp_again", "bcp")]}
    config = tiny(targets=["supervised", "bcp", "bcp_again"], experiments=experiments)
    assert planned_jobs(phantom_run, config) == {"summary": 1, "all": 1}


def test_hidden_tumor_labels_reach_evaluation_only(phantom_run):
    """Rewriting the tumor labels of unlabeled and test volumes replans evaluation, never training."""
    results = phantom_run / "results"
    splits = [json.loads((results / f"data/splits/labeled-0.1/seed-{s}.json").read_text()) for s in (0, 1)]
    hidden = set.intersection(*[set(s["unlabeled"] + s["test"]) for s in splits])
    for case in hidden:
        path = results / f"data/prepared/labels/case-{case}.npz"
        with np.load(path) as label:
            tumor = label["tumor"]
        np.savez_compressed(path, tumor=np.zeros_like(tumor))
    planned = planned_jobs(phantom_run, TINY_PHANTOM)
    assert "ssl_train" not in planned and "ssl_predict" not in planned
    assert planned.get("evaluate", 0) >= 1


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
