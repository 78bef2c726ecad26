"""What each job reads (aslseg/job_inputs.py) and what a config plans (aslseg/plan.py), checked without
Snakemake on the default config: which volumes' tumor labels reach which jobs (the honest data flow), how
rounds chain, how inference shards split the volumes. tests/test_workflow*.py check the same through real runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aslseg import artifacts
from aslseg.artifacts import VAL_SHARD, WILDCARDS
from aslseg.config import ConfigError, load_config
from aslseg.job_inputs import JobInputs
from aslseg.plan import Plan
from tests.conftest import REPO

SPLIT = {"test": [0, 1, 2], "val": [3, 4], "labeled": [5, 6], "unlabeled": [7, 8, 9, 10, 11]}
HOLDOUT = {"test": [0, 1, 2], "val": [3, 4], "train": [5, 6, 7, 8, 9, 10, 11]}


class Wildcards(dict):
    """What an input function receives: the job's wildcards, by attribute and as items()."""

    __getattr__ = dict.__getitem__


def config(**changes) -> dict:
    settings = load_config(REPO / "config.yaml")
    settings["results_dir"] = "R"
    for section, values in changes.items():
        settings[section] = {**settings[section], **values} if isinstance(values, dict) else values
    return settings


@pytest.fixture
def plan() -> Plan:
    return Plan(config(resources={**config()["resources"], "infer": {**config()["resources"]["infer"], "shards": 2}}))


@pytest.fixture
def inputs(plan, tmp_path) -> JobInputs:
    (tmp_path / "split.json").write_text(json.dumps(SPLIT))
    (tmp_path / "holdout.json").write_text(json.dumps(HOLDOUT))
    outputs = {"ssl_predict": ["R/{model}/pl1/shard-{shard}.npz"]}
    return JobInputs(plan, split_file=lambda labeled, seed: str(tmp_path / "split.json"),
                     holdout_file=lambda: str(tmp_path / "holdout.json"),
                     raw_files=lambda case: {"volume": f"raw/volume-{case}.nii", "segmentation": f"raw/seg-{case}.nii"},
                     rule_outputs=outputs.get)


def label_cases(files) -> set[int]:
    """The cases whose tumor labels are among `files` (any nesting of dicts and lists)."""
    if isinstance(files, dict):
        return set().union(*(label_cases(value) for value in files.values())) if files else set()
    if isinstance(files, list):
        return set().union(*(label_cases(value) for value in files)) if files else set()
    match = re.fullmatch(r"R/data/prepared/labels/case-(\d+)\.npz", str(files))
    return {int(match[1])} if match else set()


def round_wildcards(plan: Plan, experiment: str, round_index: int, **extra) -> Wildcards:
    wildcards = artifacts.selection_wildcards(plan.experiments[experiment], 0, round_index)
    return Wildcards({**wildcards, **extra})


def test_training_jobs_read_the_labels_of_labeled_and_val_volumes_only(plan, inputs):
    seen = SPLIT["labeled"] + SPLIT["val"]
    draw = Wildcards(labeled="0.1", seed="0", tune=next(iter(plan.catalog.tunes)),
                     synth=next(iter(plan.catalog.synths)), adapt=next(iter(plan.catalog.adapts)))
    for round_index in (0, 1, 2):
        assert label_cases(inputs.ssl_train(round_wildcards(plan, "aslseg", round_index))) == set(seen)
    assert label_cases(inputs.sam_finetune(draw)) == set(seen)
    assert label_cases(inputs.synthesis(draw)) == set(seen)
    assert label_cases(inputs.adapt_train(draw)) == set(seen)
    # AN's judgement and a calibrated selection read the val volumes' labels, which training reads already
    assert label_cases(inputs.adapt_judge(round_wildcards(plan, "aslseg", 0))) == set(SPLIT["val"])
    assert label_cases(inputs.selection(round_wildcards(plan, "aslseg", 1))) == set(SPLIT["val"])
    # the liver model: the labeled and val volumes' segmentations
    liver = inputs.liver_train(draw)
    assert liver["labeled_segmentation"] == ["raw/seg-5.nii", "raw/seg-6.nii"]
    assert liver["val_segmentation"] == ["raw/seg-3.nii", "raw/seg-4.nii"]


def test_hidden_labels_reach_evaluation_functions_only(plan, inputs):
    wildcards = round_wildcards(plan, "aslseg", 0)
    assert label_cases(inputs.test_labels(wildcards)) == set(SPLIT["test"])
    assert label_cases(inputs.unlabeled_labels(wildcards)) == set(SPLIT["unlabeled"])
    assert inputs.test_raw("segmentation")(wildcards) == [f"raw/seg-{case}.nii" for case in SPLIT["test"]]


def test_a_round_trains_on_the_previous_selections_list_and_every_earlier_final_label(plan, inputs):
    round_2 = inputs.ssl_train(round_wildcards(plan, "aslseg", 2))
    assert round_2["labeled_list"] == plan.selection_file(artifacts.LABELED_LIST, "aslseg", 0, 1)
    assert round_2["previous_model"] == f"R/{plan.model_dir('aslseg', 0, 1)}/model.pt"
    assert round_2["pseudo_labels"] == plan.final_pseudo_labels("aslseg", 0, 0) + plan.final_pseudo_labels("aslseg", 0, 1)
    assert all("/pl3/shard-" in path for path in round_2["pseudo_labels"])  # AN is on by default
    assert set(inputs.ssl_train(round_wildcards(plan, "aslseg", 0))) == {"split", "images", "labels"}


def test_a_later_rounds_calibration_reads_which_val_slices_earlier_rounds_took(plan, inputs):
    """Round r's calibrated selection leaves out the val slices earlier thresholds accepted
    (reliability.calibrate_round): it reads the previous round's calibration.json; round 0 has none."""
    assert "previous_calibration" not in inputs.selection(round_wildcards(plan, "aslseg", 0))
    got = inputs.selection(round_wildcards(plan, "aslseg", 1))
    assert got["previous_calibration"] == plan.selection_file(artifacts.CALIBRATION, "aslseg", 0, 0)


def test_a_round_job_gets_its_previous_rounds_outputs_to_copy(plan, inputs):
    previous_round = inputs.previous_round("ssl_predict")
    assert previous_round(Wildcards(model=plan.model_dir("aslseg", 0, 0), shard="1")) == {}
    got = previous_round(Wildcards(model=plan.model_dir("aslseg", 0, 2), shard="1"))
    assert got == {"round_model": f"R/{plan.model_dir('aslseg', 0, 2)}/model.pt",
                   "previous_model": f"R/{plan.model_dir('aslseg', 0, 1)}/model.pt",
                   "previous_outputs": [f"R/{plan.model_dir('aslseg', 0, 1)}/pl1/shard-1.npz"]}


def test_inference_shards_partition_the_unlabeled_volumes_and_shard_val_is_the_val_volumes(plan, inputs):
    model = plan.model_dir("aslseg", 0, 0)
    shards = [inputs.shard_images(Wildcards(model=model, shard=str(k))) for k in plan.shards]
    assert sorted(path for shard in shards for path in shard) == sorted(inputs.images(SPLIT["unlabeled"]))
    assert all(shards) and not set(shards[0]) & set(shards[1])
    assert inputs.shard_images(Wildcards(model=model, shard=VAL_SHARD)) == inputs.images(SPLIT["val"])


def test_embedding_shards_cover_the_train_and_val_volumes_and_never_a_test_volume(plan, inputs):
    embed = next(iter(plan.catalog.embeddings))
    images = inputs.embed_shard_images(Wildcards(embed=embed, shard="0"))
    assert images == inputs.images(sorted(HOLDOUT["train"] + HOLDOUT["val"]))  # sam.shards: 1


def test_every_planned_file_matches_the_wildcards_of_the_rule_that_writes_it(plan):
    """A name the plan builds must parse back through the Snakefile's wildcard patterns."""
    row = plan.loop_rows(["aslseg"], [0])[0]
    selection = re.escape("R/") + WILDCARDS["model"].join(["(", ")"]) + "/sam-(" + WILDCARDS["samrun"] + \
        ")/adapt-(" + WILDCARDS["adaptrun"] + ")/select-(" + WILDCARDS["select"] + ")/labeled_next_round.csv"
    assert re.fullmatch(selection, row["labeled_list"])
    for summary in plan.summary_rows(["supervised", "aslseg"], [0, 1]):
        assert re.fullmatch(f"R/({WILDCARDS['model']})/test_summary.json", summary["summary"])


def test_rows_cover_every_round_of_every_experiment(plan):
    rows = plan.summary_rows(["supervised", "aslseg", "aslseg_one_round"], [0, 1])
    assert [(r["experiment"], r["seed"], r["round"]) for r in rows] == \
        [("supervised", 0, 0), ("supervised", 1, 0)] + \
        [("aslseg", s, r) for s in (0, 1) for r in (0, 1, 2)] + [("aslseg_one_round", s, r) for s in (0, 1) for r in (0, 1)]
    assert rows[2]["model"] == plan.model_dir("aslseg", 0, 0) and rows[2]["run"].startswith("bcp-")
    # rounds are not part of a loop's name: the one-round experiment's round 1 is aslseg's
    assert rows[9]["model"] == rows[3]["model"] == plan.model_dir("aslseg", 0, 1)
    loops = plan.loop_rows(["supervised", "aslseg", "aslseg_one_round"], [0])
    assert [(r["experiment"], r["round"]) for r in loops] == [("aslseg", 0), ("aslseg", 1), ("aslseg_one_round", 0)]
    assert plan.loop_row_files(loops)[0] == loops[0]["quality"]


def test_the_paper_target_names_undefined_experiments_only_when_asked_for():
    settings = config(paper={**config()["paper"], "methods": ["supervised", "nonesuch"]})
    plan = Plan(settings)  # the run's own targets still plan
    assert "nonesuch" not in plan.experiments
    with pytest.raises(ConfigError, match="nonesuch"):
        plan.paper_targets()


def test_predict_names_its_model_and_rejects_a_round_the_experiment_lacks(tmp_path):
    plan = Plan(config(predict={**config()["predict"], "experiment": "aslseg", "round": 1}))
    model, request = plan.predict_request()
    assert model == plan.model_dir("aslseg", 0, 1) and request == {"experiment": "aslseg", "round": 1, "seed": 0}
    assert plan.predict_liver_model() == plan.liver_model("0.1", 0)
    with pytest.raises(ConfigError, match="has rounds"):
        Plan(config(predict={**config()["predict"], "experiment": "supervised", "round": 1})).predict_request()
    with pytest.raises(ConfigError, match="predict.input"):
        plan.predict_scans()


def test_without_sam_agreement_cannot_be_the_score():
    experiments = {**config()["experiments"], "no_sam": {"sam": {"enabled": False}}}
    with pytest.raises(ConfigError, match="agreement_weight"):
        Plan(config(experiments=experiments, targets=["no_sam"]))


def test_without_sam_its_iou_cannot_be_scored():
    no_iou = {"agreement_weight": 0.0, "confidence_weight": 1.0}  # the default still weighs SAM's IoU
    experiments = {**config()["experiments"], "no_sam": {"sam": {"enabled": False}, "select": no_iou}}
    with pytest.raises(ConfigError, match="sam_iou_weight"):
        Plan(config(experiments=experiments, targets=["no_sam"]))
    experiments["no_sam"]["select"] = {**no_iou, "sam_iou_weight": 0.0}
    assert Plan(config(experiments=experiments, targets=["no_sam"])).experiments["no_sam"]["select"]["sam_iou_weight"] == 0
