"""The ASLseg loop in a real snakemake run on a tiny phantom with the real LiteMedSAM weights: embeddings once
per slice, decoder fine-tuning, prompts and Pseudo Label 2 from Pseudo Label 1, synthetic pseudo-labels, the
adaptation network and Pseudo Label 3, reliability scores, the expanded labeled lists, two rounds of
retraining, the ablations without AN and without SAM, and what reruns when."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from aslseg.pseudo_labels import read_masks
from aslseg.sam.liver_rim import off_rim
from aslseg.sam.prompts import components as mask_components
from tests.test_workflow import TINY_SSL, planned_jobs, snakemake, with_changes

pytestmark = pytest.mark.workflow

# Few, thick slices: every liver slice of the train and val volumes is embedded (~0.5 s each on this CPU); one
# slice without liver above and below each liver, which SAM never sees.
TINY_STAGE2 = {
    **TINY_SSL,
    "targets": ["supervised", "aslseg", "aslseg_point", "aslseg_no_adapt", "aslseg_no_sam", "aslseg_calibrated",
                "aslseg_accepts_nothing"],
    # aslseg runs two rounds; the ablations one (round 1 is trained and evaluated, nothing pseudo-labeled after it).
    "experiments": {
        "supervised": {"ssl": {"method": "supervised"}, "loop": {"rounds": 0}},
        "aslseg": {"ssl": {"method": "bcp"}, "loop": {"rounds": 2}},
        # no prompts in the liver's rim (sam.max_rim_share, 0.5 by default). This tiny run's base config
        # prompts every component (below), so that both paths run: aslseg's box run prompts every one
        "aslseg_point": {"ssl": {"method": "bcp"}, "sam": {"prompt": "point", "max_rim_share": 0.5}, "loop": {"rounds": 1}},
        # a warm-started round with negatives (both off by default). Box prompts with the rim rule leave some
        # liver slices with an empty final label (without it none is in this tiny run), and a lower threshold
        # keeps the round accepting slices, the negatives' precondition.
        "aslseg_no_adapt": {"ssl": {"method": "bcp"}, "adapt": {"enabled": False}, "sam": {"max_rim_share": 0.5},
                            "select": {"negatives": True, "threshold": 0.3}, "loop": {"rounds": 1, "warm_start": True}},
        "aslseg_no_sam": {"ssl": {"method": "bcp"}, "sam": {"enabled": False}, "loop": {"rounds": 1},
                          "select": {"agreement_weight": 0.0, "sam_iou_weight": 0.0, "confidence_weight": 1.0,
                                     "threshold": 0.5}},
        "aslseg_calibrated": {"ssl": {"method": "bcp"}, "select": {"rule": "calibrated", "min_val_slices": 1},
                              "loop": {"rounds": 1}},
        # No threshold rests on that many val slices: every selection accepts nothing (as on the default, seed 0).
        "aslseg_accepts_nothing": {"ssl": {"method": "bcp"}, "select": {"rule": "calibrated", "min_val_slices": 10**6},
                                   "loop": {"rounds": 2}},
    },
    "seeds": [0],
    "data": {
        "size": 32,
        "slice_margin": 1,
        "split": {"labeled_min_tumor_ml": 0.05, "labeled": 0.2},
        "phantom": {"n_volumes": 8, "matrix": 64, "slice_thickness_mm": [12.0, 14.0], "liver_height_mm": [60, 80],
                    "tumor_free_fraction": 0.0, "tumor_diameter_mm": [15, 30]},
    },
    "resources": {"infer": {"shards": 1}},  # fewer jobs; sharded inference is covered by the Stage I tests
    # sharded embedding, as on a cluster; every PL1 component prompted (the default until session 26) unless an
    # experiment sets the rim rule, so that aslseg's rounds keep the labels their tests were written against
    "sam": {"shards": 2, "finetune": {"iterations": 3, "batch_size": 2}, "max_rim_share": None},
    "adapt": {"iterations": 4, "batch_size": 2, "features": [4, 4, 8, 8, 16, 4], "val_every": 2},
    # Agreement alone at 0.5: with the default score this tiny run's round 1 accepts nothing, and these tests need
    # both rounds to accept slices (aslseg_calibrated scores with the default weights and SAM's IoUs).
    "select": {"rule": "threshold", "threshold": 0.5, "sam_iou_weight": 0.0, "confidence_weight": 0.0},
}


def changed(**changes) -> dict:
    """TINY_STAGE2 with changes given as dotted keys."""
    return with_changes(TINY_STAGE2, changes)


@pytest.fixture(scope="module")
def stage2_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stage2_run")
    snakemake(workdir, TINY_STAGE2, timeout=1500)  # ~70 jobs, each starting torch
    return workdir


def test_every_liver_slice_of_the_train_and_val_volumes_is_embedded_exactly_once(stage2_run):
    results = stage2_run / "results"
    holdout = json.loads((results / "data/splits/holdout.json").read_text())
    indexes = sorted(results.glob("sam/embeddings/*/shard-*.json"))
    assert len(indexes) == 2  # sam.shards
    rows = [tuple(row) for index in indexes for row in json.loads(index.read_text())["rows"]]
    assert len(rows) == len(set(rows))
    assert {case for case, _ in rows} == set(holdout["train"] + holdout["val"])  # never a test volume
    liver_slices = set()
    for case in holdout["train"] + holdout["val"]:
        with np.load(results / f"data/prepared/images/case-{case}.npz") as image:
            has_liver = image["liver"].reshape(len(image["liver"]), -1).any(axis=1)
        assert not has_liver.all()  # data.slice_margin keeps slices without liver: they are not embedded
        liver_slices |= {(case, int(position)) for position in np.flatnonzero(has_liver)}
    assert set(rows) == liver_slices
    n_slices = len(liver_slices)
    calls = [int(m.group(1)) for log in results.glob("logs/sam_embed/*.log")
             for m in re.finditer(r"encoder calls: (\d+)", log.read_text())]
    assert sum(calls) == n_slices
    for index in indexes:
        assert np.load(index.with_suffix(".npy"), mmap_mode="r").dtype == np.float16


def test_pseudo_label_2_follows_the_prompts_of_pseudo_label_1(stage2_run):
    results = stage2_run / "results"
    summary = pd.read_csv(results / "pseudo_label_summary.csv")
    assert sorted(zip(summary["experiment"], summary["round"])) == [
        ("aslseg", 0), ("aslseg", 1), ("aslseg_accepts_nothing", 0), ("aslseg_accepts_nothing", 1),
        ("aslseg_calibrated", 0), ("aslseg_no_adapt", 0), ("aslseg_no_sam", 0), ("aslseg_point", 0)]
    summary = summary[summary["round"] == 0]
    assert summary["run"].nunique() == 1  # every variant refines the same Stage I model's PL1
    run = summary["run"].iloc[0]
    # aslseg's box run (every component prompted, as this tiny run's base config sets), aslseg_no_adapt's and
    # aslseg_point's (the rim rule, the default config's)
    folders = sorted(results.glob(f"ssl/{run}/seed-0/sam-box-*")) + sorted(results.glob(f"ssl/{run}/seed-0/sam-point-*"))
    shard = 0  # the tiny run has one shard
    prompt_files = {folder: json.loads((folder / f"prompts/shard-{shard}.json").read_text()) for folder in folders}
    by_rule = {(p["settings"]["prompt"], p["settings"].get("max_rim_share")): p for p in prompt_files.values()}
    assert sorted(by_rule, key=str) == [("box", 0.5), ("box", None), ("point", 0.5)]
    n_prompts = {rule: p["n_prompts"] for rule, p in by_rule.items()}
    # one prompt per component (of at least 4 pixels); the rim rule drops some, for both prompt types alike
    assert 0 < n_prompts[("point", 0.5)] == n_prompts[("box", 0.5)] < n_prompts[("box", None)]
    for folder, prompts in prompt_files.items():
        max_rim_share, min_pixels = prompts["settings"].get("max_rim_share"), prompts["settings"]["min_component_pixels"]
        components = pd.read_csv(folder / f"pl2/shard-{shard}.csv")
        assert len(components) == prompts["n_prompts"]
        with np.load(folder / f"pl2/shard-{shard}.npz") as pl2, np.load(
            results / f"ssl/{run}/seed-0/pl1/shard-{shard}.npz"
        ) as pl1:
            masks = sorted(key for key in pl2.files if key.startswith("mask_"))
            assert masks == sorted(key for key in pl1.files if key.startswith("mask_"))
            prompted = {(entry["case"], entry["position"]) for entry in prompts["slices"]}
            areas = {(entry["case"], entry["position"]): sorted(p["area"] for p in entry["prompts"])
                     for entry in prompts["slices"]}
            for key in masks:
                case = int(key.split("_")[1])
                assert pl2[key].shape == pl1[key].shape
                with np.load(results / f"data/prepared/images/case-{case}.npz") as image:
                    liver, pixel_mm = image["liver"], float(image["spacing"][1])
                for position in range(len(pl2[key])):
                    # a prompt for every PL1 component big enough and not lying mostly in the liver's rim
                    kept = off_rim(pl1[key][position], liver[position], pixel_mm, max_rim_share)
                    expected = [int(c.sum()) for c in mask_components(kept, min_pixels=min_pixels)]
                    assert areas.get((case, position), []) == sorted(expected)
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
    # round 0 of aslseg, aslseg_point, aslseg_no_adapt, aslseg_no_sam, aslseg_calibrated, aslseg_accepts_nothing
    assert len(qualities) == 6
    for path in qualities:
        quality = json.loads(path.read_text())
        assert all(0 <= quality[name]["dice"] <= 1 for name in ("pl1", "pl2", "pl3"))  # unlabeled volumes hold tumor
        assert quality["selection"]["accepted_slices"] == quality["n_accepted_slices"]
    for listed_path in results.glob("ssl/*/seed-0/sam-*/adapt-*/select-*/labeled_next_round.csv"):
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
    # AN is judged per round on the val volumes' real PL2; where it loses, the round's PL3 is PL2 itself.
    judgements = list(results.glob("*/**/sam-*/adapt-*/judgement.json"))
    # round 0 of aslseg (whose folder the calibrated experiments share: same SS, SAM and AN) and aslseg_point;
    # round 1 of aslseg and of aslseg_accepts_nothing
    assert len(judgements) == 4
    for path in judgements:
        judgement = json.loads(path.read_text())
        assert judgement["val_cases"] == sorted(split["val"])
        assert judgement["use_an"] == (judgement["an_val_dice"] > judgement["pl2_val_dice"])
        pl2 = read_masks([path.parent.parent / "pl2/shard-0.npz"])
        pl3 = read_masks([path.parent / "pl3/shard-0.npz"])
        if not judgement["use_an"]:
            assert all(np.array_equal(pl2[case], pl3[case]) for case in pl2)
    # Without AN, PL2 is scored as it is and is the label of the accepted slices.
    no_adapt_dir = next(results.glob("ssl/*/seed-0/sam-box-*/adapt-none/select-*"))
    no_adapt = pd.read_csv(no_adapt_dir / "labeled_next_round.csv")
    assert all("/pl2/" in path for path in no_adapt.query("source != 'ground_truth'")["label_file"])
    # select.negatives (its experiment's alone): beside the accepted slices, every liver slice whose final
    # label is empty and that was not accepted joins as a negative
    scores = pd.read_csv(no_adapt_dir / "scores.csv")
    livers = {c: np.load(results / f"data/prepared/images/case-{c}.npz")["liver"].any(axis=(1, 2))
              for c in split["unlabeled"]}
    empty = scores[(scores["pl3_pixels"] == 0) & ~scores["accepted"]
                   & np.array([bool(livers[c][p]) for c, p in zip(scores["case"], scores["position"])], dtype=bool)]
    negatives = no_adapt.query("source == 'negative'")
    assert scores["accepted"].any() and len(negatives) > 0
    assert set(zip(negatives["case"], negatives["position"])) == set(zip(empty["case"], empty["position"]))
    assert sum((pd.read_csv(path)["source"] == "negative").sum()
               for path in results.glob("ssl/*/seed-0/sam-*/adapt-*/select-*/labeled_next_round.csv")) == len(negatives)
    assert not list(results.glob("ssl/*/seed-0/sam-*/adapt-none/pl3"))
    # Without SAM, PL1 is scored on its own confidence and is the label; no prompt or PL2 is made for it.
    no_sam = results.glob("ssl/*/seed-0/sam-none/adapt-none/select-*/")
    no_sam = next(no_sam)
    scores = pd.read_csv(no_sam / "scores.csv")
    assert (scores["agreement"] == 1).all() and scores["score"].equals(scores["confidence"])
    assert all("/pl1/" in path for path in pd.read_csv(no_sam / "labeled_next_round.csv").query("source == 'pseudo'")["label_file"])
    assert not list(results.glob("ssl/*/seed-0/sam-none/prompts"))


def test_a_calibrated_selection_finds_its_threshold_on_the_val_volumes(stage2_run):
    results = stage2_run / "results"
    split = json.loads((results / "data/splits/labeled-0.2/seed-0.json").read_text())
    calibrations = {path.parent: json.loads(path.read_text())
                    for path in results.glob("ssl/*/seed-0/sam-*/adapt-*/select-*/calibration.json")}
    assert {c["rule"] for c in calibrations.values()} == {"threshold", "calibrated"}
    # a fixed rule keeps its configured threshold: aslseg_no_adapt's (box prompts, no AN) 0.3, the others' 0.5
    fixed = [(folder.parent.name == "adapt-none" and folder.parent.parent.name.startswith("sam-box-"), c["threshold"])
             for folder, c in calibrations.items() if c["rule"] == "threshold"]
    assert sorted(set(fixed)) == [(False, 0.5), (True, 0.3)]
    [(folder, calibration)] = [(f, c) for f, c in calibrations.items()
                               if c["rule"] == "calibrated" and c["min_val_slices"] == 1]  # aslseg_calibrated
    # The val volumes went through Stages I-III like one more unlabeled shard, and only for this selection.
    adapt_dir = folder.parent
    for path in (adapt_dir.parent.parent / "pl1/shard-val.npz", adapt_dir.parent / "pl2/shard-val.npz",
                 adapt_dir / "pl3/shard-val.npz"):
        assert {int(k.split("_")[1]) for k in np.load(path).files if k.startswith("mask_")} == set(split["val"])
    # aslseg's round 1 (threshold rule) judges AN on the val volumes and never calibrates on them
    aslseg = pd.read_csv(results / "summary.csv").query("experiment == 'aslseg' and round == 1")["run"].item()
    assert list(results.glob(f"loop/{aslseg}/**/pl2/shard-val.npz"))
    assert not list(results.glob(f"loop/{aslseg}/**/pl3/shard-val.npz"))
    assert calibration["val_eligible"] == (calibration["curve"][-1]["accepted"] if calibration["curve"] else 0)
    scores = pd.read_csv(folder / "scores.csv")
    if calibration["threshold"] is None:
        assert not scores["accepted"].any() and calibration["val_accepted"] == 0
    else:
        expected = ~scores["both_empty"] & (scores["score"] >= calibration["threshold"])
        assert scores["accepted"].equals(expected)
        assert calibration["val_accepted_right"] >= calibration["precision_target"] * calibration["val_accepted"]
    assert calibration["accepted"] == scores["accepted"].sum()
    # Round 1 trains on round 0's list plus what this selection accepted; with nothing accepted it would only
    # repeat round 0's training, so round 0's model is reused as it is.
    runs = pd.read_csv(results / "summary.csv").query("experiment == 'aslseg_calibrated'").set_index("round")["run"]
    log = (results / f"logs/ssl_train/loop/{runs[1]}/seed-0/round-1.log").read_text()
    model_0, model_1 = results / f"ssl/{runs[0]}/seed-0/model.pt", results / f"loop/{runs[1]}/seed-0/round-1/model.pt"
    assert ("whose model is reused" in log) == (calibration["accepted"] == 0)
    assert (model_0.read_bytes() == model_1.read_bytes()) == (calibration["accepted"] == 0)


def test_two_rounds_retrain_on_the_expanded_lists_and_evaluate_every_round(stage2_run):
    results = stage2_run / "results"
    split = json.loads((results / "data/splits/labeled-0.2/seed-0.json").read_text())
    summary = pd.read_csv(results / "summary.csv")
    rounds = summary.groupby("experiment")["round"].apply(sorted).to_dict()
    assert rounds == {"supervised": [0], "aslseg": [0, 1, 2], "aslseg_point": [0, 1], "aslseg_no_adapt": [0, 1],
                      "aslseg_no_sam": [0, 1], "aslseg_calibrated": [0, 1], "aslseg_accepts_nothing": [0, 1, 2]}
    assert summary[["dice", "n_cases"]].notna().all().all()
    aslseg = summary[summary["experiment"] == "aslseg"].set_index("round")["run"]
    loop = aslseg[1]
    assert aslseg[2] == loop and aslseg[0] != loop  # rounds >= 1 live in the loop's folder
    round_1, round_2 = results / f"loop/{loop}/seed-0/round-1", results / f"loop/{loop}/seed-0/round-2"
    for round_dir in (round_1, round_2):
        assert (round_dir / "model.pt").is_file() and (round_dir / "test_summary.json").is_file()
    # Round 0's selection made round 1's list, round 1's selection round 2's. Round 0's folder holds the
    # selections of several experiments (aslseg_calibrated's too): aslseg's has the name of its round-1 one.
    selection_1 = next(round_1.glob("sam-box-*/adapt-*/select-*"))
    selection_0 = results / f"ssl/{aslseg[0]}/seed-0" / selection_1.relative_to(round_1)
    list_1 = pd.read_csv(selection_0 / "labeled_next_round.csv")
    for name in ("scores.csv", "labeled_next_round.csv", "pseudo_label_quality.json"):
        assert (selection_1 / name).is_file()
    for stage in ("pl1", "sam-box-*/prompts", "sam-box-*/pl2", "sam-box-*/adapt-*/pl3"):
        assert len(list(round_1.glob(f"{stage}/shard-0.*"))) >= 1
    assert not list(round_2.glob("pl1")) and not list(round_2.glob("sam-*"))  # the last round pseudo-labels nothing
    list_2 = pd.read_csv(selection_1 / "labeled_next_round.csv")
    # The list only grows: round 1's rows stay as they were; round 1's picks are new slices of unlabeled volumes.
    kept = list_2.merge(list_1, on=["case", "position"], suffixes=("", "_before"))
    assert len(kept) == len(list_1)
    assert (kept["source"] == kept["source_before"]).all() and (kept["label_file"] == kept["label_file_before"]).all()
    new = list_2[list_2["round_accepted"] == 1]
    assert len(list_2) == len(list_1) + len(new) and set(new["case"]) <= set(split["unlabeled"])
    assert all(f"loop/{loop}/seed-0/round-1/" in path for path in new["label_file"])
    # Round 1 scores only the slices still unlabeled after round 0.
    scores_1 = pd.read_csv(selection_1 / "scores.csv")
    listed_1 = set(zip(list_1["case"], list_1["position"]))
    assert not listed_1 & set(zip(scores_1["case"], scores_1["position"]))
    assert new["position"].size == scores_1["accepted"].sum()
    # Each round trained on its list: the log counts its pseudo-labeled slices.
    for round_index, listed in ((1, list_1), (2, list_2)):
        log = (results / f"logs/ssl_train/loop/{loop}/seed-0/round-{round_index}.log").read_text()
        assert f"({(listed['source'] == 'pseudo').sum()} pseudo-labeled)" in log
        if (listed["source"] == "pseudo").any():  # loop.truth_share
            assert "a share of 0.5 from the ground truth" in log
        assert "warm start" not in log  # loop.warm_start is off: every round from scratch
    # aslseg_no_adapt's round 1 begins from round 0's model (loop.warm_start).
    warm = summary[summary["experiment"] == "aslseg_no_adapt"].set_index("round")["run"]
    log = (results / f"logs/ssl_train/loop/{warm[1]}/seed-0/round-1.log").read_text()
    assert "warm start: training begins from round 0's model" in log
    assert "negatives), " in log and "in round 0's shape" in log  # its selection's negatives


def test_a_round_whose_selection_accepted_nothing_copies_the_previous_rounds_outputs(stage2_run):
    results = stage2_run / "results"
    summary = pd.read_csv(results / "summary.csv")
    runs = summary.query("experiment == 'aslseg_accepts_nothing'").set_index("round")["run"]
    round_0, loop = results / f"ssl/{runs[0]}/seed-0", results / f"loop/{runs[1]}/seed-0"
    for round_index in (1, 2):  # the model is reused, not retrained
        assert (loop / f"round-{round_index}/model.pt").read_bytes() == (round_0 / "model.pt").read_bytes()
    # Everything round 1 derives from its model (PL1, prompts, PL2, PL3, AN's judgement, scores, labeled list,
    # test metrics) is round 0's file; only the predictor names its own folder's model.
    derived = [path for path in (loop / "round-1").rglob("*") if path.is_file() and path.name != "predictor.json"]
    top = {path.relative_to(loop / "round-1").parts[0] for path in derived}
    assert {"pl1", "end_to_end", "test_summary.json", "test_cases.csv"} <= top and any(t.startswith("sam-box-") for t in top)
    assert {"shard-0.npz", "shard-val.npz", "judgement.json", "scores.csv", "pseudo_label_quality.json"} <= {p.name for p in derived}
    for path in derived:
        assert path.read_bytes() == (round_0 / path.relative_to(loop / "round-1")).read_bytes(), path
    for name in ("test_summary.json", "end_to_end/test_summary.json"):
        assert (loop / "round-2" / name).read_bytes() == (round_0 / name).read_bytes()
    rows = summary.query("experiment == 'aslseg_accepts_nothing'")
    assert rows["dice"].nunique() == 1 and rows["dice_predicted_liver"].nunique() == 1
    # ... and copied, not recomputed: each job's log says so; a round with a new model computes as usual.
    logs = results / "logs"
    copied = [path for path in logs.rglob("*.log") if f"loop/{runs[1]}/" in str(path)
              and "outputs are copied from" in path.read_text()]
    assert {path.relative_to(logs).parts[0] for path in copied} >= {
        "ssl_predict", "sam_prompts", "sam_predict", "adapt_judge", "adapt_refine", "score", "evaluate_pseudo_labels",
        "evaluate", "evaluate_end_to_end"}
    aslseg = summary.query("experiment == 'aslseg'").set_index("round")["run"]
    model_0, model_1 = results / f"ssl/{aslseg[0]}/seed-0/model.pt", results / f"loop/{aslseg[1]}/seed-0/round-1/model.pt"
    if model_0.read_bytes() != model_1.read_bytes():
        assert not [path for path in logs.rglob("*.log") if f"loop/{aslseg[1]}/seed-0/round-1" in str(path)
                    and "outputs are copied from" in path.read_text()]


def test_nothing_reruns_and_loop_or_ssl_edits_never_re_embed(stage2_run):
    assert planned_jobs(stage2_run, TINY_STAGE2) == {}
    ssl_edit = planned_jobs(stage2_run, changed(**{"ssl.lr": 0.01}))
    assert "ssl_train" in ssl_edit and not {"sam_embed", "sam_finetune"} & set(ssl_edit)
    prompt_edit = planned_outputs(stage2_run, changed(**{"sam.box_margin": 5}))
    assert "sam_prompts" in {rule for rule, _ in prompt_edit} and "sam_embed" not in {rule for rule, _ in prompt_edit}
    assert all("/round-" in output for rule, output in prompt_edit if rule == "ssl_train")  # round 0 stays
    third_round = planned_outputs(stage2_run, changed(**{"experiments.aslseg.loop.rounds": 3}))
    assert {rule for rule, _ in third_round} >= {"ssl_predict", "sam_predict", "adapt_refine", "score", "ssl_train"}
    assert all("/round-2/" in output or "/round-3/" in output or rule.endswith("summary") for rule, output in third_round)
    assert "sam_embed" not in planned_jobs(stage2_run, changed(**{"sam.finetune.iterations": 4}))
    threshold_edit = planned_outputs(stage2_run, changed(**{"select.threshold": 0.9}))
    assert {"score", "expand_labels", "ssl_train"} <= {rule for rule, _ in threshold_edit}
    assert not {"sam_embed", "sam_finetune", "adapt_synthesize", "adapt_train"} & {rule for rule, _ in threshold_edit}
    # Round 0 (Stage I, and SAM and AN on its PL1) stays; the rounds the new selection feeds are retrained.
    assert not [output for rule, output in threshold_edit if rule != "score" and "/ssl/" in output and "/select-" not in output]
    assert all("/round-" in output for rule, output in threshold_edit if rule == "ssl_train")
    # The calibrated selection reads select.precision, not select.threshold; the threshold selections the reverse.
    [calibrated] = [path.parent for path in (stage2_run / "results").glob("ssl/*/seed-0/sam-*/adapt-*/select-*/calibration.json")
                    if json.loads(path.read_text())["rule"] == "calibrated" and json.loads(path.read_text())["min_val_slices"] == 1]
    assert not [output for rule, output in threshold_edit if str(calibrated.relative_to(stage2_run)) in output]
    precision_edit = planned_outputs(stage2_run, changed(**{"experiments.aslseg_calibrated.select.precision": 0.9}))
    [rescored] = [Path(output) for rule, output in precision_edit if rule == "score"]
    assert rescored.parent.parent == calibrated.parent  # a new selection of the same PL3
    assert not {"ssl_predict", "sam_predict", "adapt_refine"} & {rule for rule, _ in precision_edit}  # val shard kept
    adapt_edit = planned_outputs(stage2_run, changed(**{"adapt.iterations": 5}))
    assert "adapt_train" in {rule for rule, _ in adapt_edit} and "adapt_synthesize" not in {rule for rule, _ in adapt_edit}
    # Round 0's Stage I and SAM stay; AN's refinement and the rounds built on it are redone.
    assert all("/round-" in output for rule, output in adapt_edit if rule in ("ssl_train", "ssl_predict", "sam_predict"))


def planned_outputs(workdir, config) -> list[tuple[str, str]]:
    """(rule, first output) of every job `snakemake -n` would run."""
    lines = snakemake(workdir, config, "-n").stdout.splitlines()
    jobs, rule = [], None
    for line in lines:
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1][:-1]
        elif rule and line.strip().startswith("output:"):
            jobs.append((rule, line.split(":", 1)[1].split(",")[0].strip()))
            rule = None
    return jobs


def test_a_missing_sam_checkpoint_stops_before_any_job(stage2_run):
    result = snakemake(stage2_run, changed(**{"sam.backend": "segment_anything", "sam.checkpoint": "/nowhere/sam_vit_b.pth"}),
                       "-n", check=False)
    assert result.returncode != 0
    assert "/nowhere/sam_vit_b.pth" in result.stdout + result.stderr


# The paper target over experiments the stage-2 run already trained: it must add its tables and figures only.
TINY_PAPER = {"seeds": [0], "methods": ["supervised", "aslseg"], "figure_slices": 2, "reference": "supervised",
              "ablation": ["aslseg_no_sam", "aslseg_no_adapt", "aslseg_point", "aslseg"]}
PAPER_RULES = {"paper", "paper_runs", "paper_pseudo_labels", "paper_tables", "paper_figure_comparison", "paper_figure_rounds"}


def paper_jobs(workdir, config) -> set[str]:
    lines = snakemake(workdir, config, "-n", "paper").stdout.splitlines()
    return {line.split()[1].rstrip(":") for line in lines if line.startswith(("rule ", "localrule ")) and line.endswith(":")}


def test_the_paper_target_builds_tables_and_figures_from_the_trained_runs(stage2_run):
    config = changed(paper=TINY_PAPER)
    assert paper_jobs(stage2_run, config) == PAPER_RULES  # nothing is trained again
    snakemake(stage2_run, config, "paper")
    results, paper = stage2_run / "results", stage2_run / "results/paper"
    summary = pd.read_csv(results / "summary.csv")
    final = summary.sort_values("round").groupby("experiment").last()  # each experiment's last round
    split = json.loads((results / "data/splits/labeled-0.2/seed-0.json").read_text())

    methods = pd.read_csv(paper / "table1_methods.csv").set_index("experiment")
    assert list(methods.index) == ["supervised", "aslseg"]
    for name in methods.index:
        assert methods.loc[name, "dice_mean"] == pytest.approx(final.loc[name, "dice"], rel=1e-3)
        assert methods.loc[name, "hd95_mm_mean"] == pytest.approx(final.loc[name, "hd95_mm"], rel=1e-3)
    assert (methods["n_seeds"] == 1).all() and methods["dice_sd"].isna().all()  # one seed: no sd to report
    # the paired difference to the reference over the test volumes with tumor is the difference of the means
    assert methods.loc["aslseg", "dice_vs_reference"] == pytest.approx(
        methods.loc["aslseg", "dice_mean"] - methods.loc["supervised", "dice_mean"], abs=1e-3)
    assert methods.loc["aslseg", "n_pairs"] == final.loc["aslseg", "n_cases"]
    assert (methods["labeled_volumes"] == len(split["labeled"])).all()
    assert methods.loc["supervised", "unlabeled_volumes"] == 0
    assert methods.loc["aslseg", "unlabeled_volumes"] == len(split["unlabeled"])
    markdown = (paper / "table1_methods.md").read_text()
    assert f"| aslseg | bcp | {len(split['labeled'])} | {len(split['unlabeled'])} | 2 | {100 * methods.loc['aslseg', 'dice_mean']:.2f} |" in markdown

    ablation = pd.read_csv(paper / "table2_ablation.csv").set_index("experiment")
    assert list(ablation.index) == TINY_PAPER["ablation"]
    stages = ablation[["sam", "sam_fine_tuned", "adaptation_network", "rounds"]]
    assert stages.loc["aslseg_no_sam"].tolist() == [False, False, False, 1]
    assert stages.loc["aslseg_no_adapt"].tolist() == [True, True, False, 1]
    assert stages.loc["aslseg"].tolist() == [True, True, True, 2]
    assert ablation.loc["aslseg_point", "prompt"] == "point" and ablation.loc["aslseg", "prompt"] == "box"
    assert ablation.loc["aslseg", "dice_mean"] == methods.loc["aslseg", "dice_mean"]

    pseudo = pd.read_csv(paper / "pseudo_labels.csv")
    assert set(pseudo["experiment"]) == set(TINY_PAPER["ablation"])  # every loop experiment, every round
    assert len(pseudo[pseudo["experiment"] == "aslseg"]) == 2
    comparison = plt.imread(paper / "figure_comparison.png")
    rows, columns = 2, 2 + len(TINY_PAPER["methods"])
    assert comparison.shape[1] / comparison.shape[0] == pytest.approx(2.1 * columns / (2.2 * rows + 0.4), rel=0.05)
    assert plt.imread(paper / "figure_rounds.png").shape[1] > 0
    assert paper_jobs(stage2_run, config) == set()  # built once: "Nothing to be done"


def test_the_paper_target_names_experiments_it_cannot_find(stage2_run):
    config = changed(paper={**TINY_PAPER, "methods": ["supervised", "mean_teacher"]})
    result = snakemake(stage2_run, config, "-n", "paper", check=False)
    assert result.returncode != 0 and "paper: ['mean_teacher'] are not defined under experiments" in result.stdout + result.stderr
    assert snakemake(stage2_run, config, "-n").returncode == 0  # the default target does not need them
