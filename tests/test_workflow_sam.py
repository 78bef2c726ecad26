"""Stages II and III of round 0 in a real snakemake run on a tiny phantom with the real LiteMedSAM weights:
embeddings once per slice, decoder fine-tuning, prompts and Pseudo Label 2 from Pseudo Label 1, synthetic
pseudo-labels, the adaptation network and Pseudo Label 3, reliability scores, round 1's labeled list, and
what reruns when."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from tests.test_workflow import TINY_SSL, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

# Few, thick slices: every slice of the train and val volumes is embedded (~1 s each on this CPU).
TINY_STAGE2 = {
    **TINY_SSL,
    "targets": ["supervised", "aslseg", "aslseg_point", "aslseg_no_adapt"],
    "seeds": [0],
    "data": {
        "size": 32,
        "slice_margin": 0,
        "split": {"labeled_min_tumor_ml": 0.05, "labeled": 0.2},
        "phantom": {"n_volumes": 8, "matrix": 64, "slice_thickness_mm": [12.0, 14.0], "liver_height_mm": [60, 80],
                    "tumor_free_fraction": 0.0, "tumor_diameter_mm": [15, 30]},
    },
    "resources": {"infer": {"shards": 2}},
    "sam": {"finetune": {"iterations": 3, "batch_size": 2}},
    "adapt": {"iterations": 4, "batch_size": 2, "features": [4, 4, 8, 8, 16, 4], "val_every": 2},
    "select": {"threshold": 0.5},
}


def changed(**changes) -> dict:
    """TINY_STAGE2 with changes given as dotted keys."""
    config = json.loads(json.dumps(TINY_STAGE2))
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return config


@pytest.fixture(scope="module")
def stage2_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stage2_run")
    snakemake(workdir, TINY_STAGE2)
    return workdir


def test_every_slice_of_the_train_and_val_volumes_is_embedded_exactly_once(stage2_run):
    results = stage2_run / "results"
    holdout = json.loads((results / "data/splits/holdout.json").read_text())
    indexes = sorted(results.glob("sam/embeddings/*/shard-*.json"))
    assert len(indexes) == 2  # sam.shards
    rows = [tuple(row) for index in indexes for row in json.loads(index.read_text())["rows"]]
    assert len(rows) == len(set(rows))
    assert {case for case, _ in rows} == set(holdout["train"] + holdout["val"])  # never a test volume
    n_slices = 0
    for case in holdout["train"] + holdout["val"]:
        with np.load(results / f"data/prepared/images/case-{case}.npz") as image:
            n_slices += len(image["image"])
    assert len(rows) == n_slices
    calls = [int(m.group(1)) for log in results.glob("logs/sam_embed/*.log")
             for m in re.finditer(r"encoder calls: (\d+)", log.read_text())]
    assert sum(calls) == n_slices
    for index in indexes:
        assert np.load(index.with_suffix(".npy"), mmap_mode="r").dtype == np.float16


def test_pseudo_label_2_follows_the_prompts_of_pseudo_label_1(stage2_run):
    results = stage2_run / "results"
    summary = pd.read_csv(results / "pseudo_label_summary.csv")
    assert sorted(summary["experiment"]) == ["aslseg", "aslseg_no_adapt", "aslseg_point"]
    assert summary["run"].nunique() == 1  # every variant refines the same Stage I model's PL1
    run = summary["run"].iloc[0]
    folder = next(results.glob(f"ssl/{run}/seed-0/sam-box-*"))
    for shard in (0, 1):
        prompts = json.loads((folder / f"prompts/shard-{shard}.json").read_text())
        components = pd.read_csv(folder / f"pl2/shard-{shard}.csv")
        assert len(components) == prompts["n_prompts"]
        with np.load(folder / f"pl2/shard-{shard}.npz") as pl2, np.load(
            results / f"ssl/{run}/seed-0/pl1/shard-{shard}.npz"
        ) as pl1:
            masks = sorted(key for key in pl2.files if key.startswith("mask_"))
            assert masks == sorted(key for key in pl1.files if key.startswith("mask_"))
            prompted = {(entry["case"], entry["position"]) for entry in prompts["slices"]}
            for key in masks:
                case = int(key.split("_")[1])
                assert pl2[key].shape == pl1[key].shape
                for position in range(len(pl2[key])):
                    if (case, position) not in prompted:  # no PL1 component: no prompt, empty PL2
                        assert not pl2[key][position].any()
    report = json.loads(next(results.glob("sam/finetune/*/labeled-0.2/seed-0/val_prompt_dice.json")).read_text())
    assert set(report["zero_shot"]) == {"box", "point", "multipoint", "box+point"}
    decoder = torch.load(next(results.glob("sam/finetune/*/labeled-0.2/seed-0/decoder.pt")), weights_only=True)
    assert decoder["decoder_state"] and decoder["sam"]["finetune"]["iterations"] == 3


def test_stage3_refines_scores_and_expands_the_labeled_list(stage2_run):
    results = stage2_run / "results"
    split = json.loads((results / "data/splits/labeled-0.2/seed-0.json").read_text())
    synthetic = np.load(next(results.glob("adapt/synthetic/*/labeled-0.2/seed-0/synthetic.npz")))
    n_labeled_slices = sum(len(np.load(results / f"data/prepared/labels/case-{c}.npz")["tumor"]) for c in split["labeled"])
    assert len(synthetic["train_pl2"]) == 2 * n_labeled_slices  # adapt.copies
    assert set(synthetic["train_case"]) == set(split["labeled"]) and set(synthetic["val_case"]) == set(split["val"])
    report = json.loads(next(results.glob("adapt/model/*/labeled-0.2/seed-0/report.json")).read_text())
    assert 0 <= report["val_dice_an"] <= 1 and 0 <= report["val_dice_pl2"] <= 1
    qualities = list(results.glob("ssl/*/seed-0/sam-*/adapt-*/select-*/pseudo_label_quality.json"))
    assert len(qualities) == 3
    for path in qualities:
        quality = json.loads(path.read_text())
        assert all(0 <= quality[name]["dice"] <= 1 for name in ("pl1", "pl2", "pl3"))  # unlabeled volumes hold tumor
        assert quality["selection"]["accepted_slices"] == quality["n_accepted_slices"]
    for listed_path in results.glob("ssl/*/seed-0/sam-*/adapt-*/select-*/labeled_round-1.csv"):
        listed = pd.read_csv(listed_path)
        scores = pd.read_csv(listed_path.with_name("scores.csv"))
        assert not listed.duplicated(["case", "position"]).any()
        truth = listed[listed["source"] == "ground_truth"]
        assert len(truth) == n_labeled_slices and set(truth["case"]) == set(split["labeled"])
        pseudo = listed[listed["source"] == "pseudo"]
        assert set(pseudo["case"]) <= set(split["unlabeled"])  # never a test or val slice
        assert len(pseudo) == scores["accepted"].sum() and (pseudo["round_accepted"] == 0).all()
        assert len(scores) == sum(len(np.load(results / f"data/prepared/images/case-{c}.npz")["image"])
                                  for c in split["unlabeled"])
    # Without AN, PL2 is scored as it is and is the label of the accepted slices.
    no_adapt = pd.read_csv(next(results.glob("ssl/*/seed-0/sam-box-*/adapt-none/select-*/labeled_round-1.csv")))
    assert all("/pl2/" in path for path in no_adapt.query("source == 'pseudo'")["label_file"])
    assert not list(results.glob("ssl/*/seed-0/sam-*/adapt-none/pl3"))


def test_nothing_reruns_and_loop_or_ssl_edits_never_re_embed(stage2_run):
    assert planned_jobs(stage2_run, TINY_STAGE2) == {}
    ssl_edit = planned_jobs(stage2_run, changed(**{"ssl.lr": 0.01}))
    assert "ssl_train" in ssl_edit and not {"sam_embed", "sam_finetune"} & set(ssl_edit)
    prompt_edit = planned_jobs(stage2_run, changed(**{"sam.box_margin": 5}))
    assert "sam_prompts" in prompt_edit and not {"sam_embed", "ssl_train"} & set(prompt_edit)
    assert "sam_embed" not in planned_jobs(stage2_run, changed(**{"loop.rounds": 3}))
    assert "sam_embed" not in planned_jobs(stage2_run, changed(**{"sam.finetune.iterations": 4}))
    threshold_edit = planned_jobs(stage2_run, changed(**{"select.threshold": 0.9}))
    assert "score" in threshold_edit and "expand_labels" in threshold_edit
    assert not {"sam_embed", "sam_finetune", "adapt_synthesize", "adapt_train", "adapt_refine", "ssl_train"} & set(threshold_edit)
    adapt_edit = planned_jobs(stage2_run, changed(**{"adapt.iterations": 5}))
    assert "adapt_train" in adapt_edit and not {"adapt_synthesize", "sam_predict", "ssl_train"} & set(adapt_edit)


def test_a_missing_sam_checkpoint_stops_before_any_job(stage2_run):
    result = snakemake(stage2_run, changed(**{"sam.backend": "segment_anything", "sam.checkpoint": "/nowhere/sam_vit_b.pth"}),
                       "-n", check=False)
    assert result.returncode != 0
    assert "/nowhere/sam_vit_b.pth" in result.stdout + result.stderr
