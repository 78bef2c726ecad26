"""The paper's tables and figures from runs tables and arrays (the workflow test in test_workflow_sam.py runs
the `paper` target for real)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from aslseg.config import validate_config
from aslseg.experiments import experiment_config
from aslseg.paper.figures import choose_slices, comparison_figure, rounds_figure
from aslseg.paper.tables import (ABLATION_COLUMNS, METHODS_COLUMNS, describe, paired_dice_test, paper_table,
                                 to_markdown, with_volume_counts)
from aslseg.prepared import Volume


def run_row(experiment, round_index, seed, dice, hd95=10.0):
    return {"experiment": experiment, "round": round_index, "seed": seed, "dice": dice, "jaccard": dice / 2,
            "hd95_mm": hd95, "asd_mm": hd95 / 4, "lesion_sensitivity": 0.5, "lesion_precision": 0.5,
            "fp_volume_ml_tumor_free": 1.0, "dice_predicted_liver": dice - 0.05, "liver_dice": 0.9}


RUNS = pd.DataFrame([
    run_row("bcp", 0, 0, 0.40), run_row("bcp", 0, 1, 0.50), run_row("bcp", 0, 2, 0.60),
    # aslseg's round 0 is bcp's model; the table must report its last round, round 2
    run_row("aslseg", 0, 0, 0.40), run_row("aslseg", 0, 1, 0.50), run_row("aslseg", 0, 2, 0.60),
    run_row("aslseg", 1, 0, 0.10), run_row("aslseg", 1, 1, 0.10), run_row("aslseg", 1, 2, 0.10),
    run_row("aslseg", 2, 0, 0.70), run_row("aslseg", 2, 1, 0.72), run_row("aslseg", 2, 2, 0.74),
    run_row("supervised", 0, 0, 0.30, hd95=float("nan")),
])
SPLIT = {"test": [0, 1, 2], "val": [3], "labeled": [4], "unlabeled": [5, 6, 7, 8]}


def settings(**overrides):
    config = validate_config({}, "config")
    return experiment_config({**config, "experiments": {"x": overrides}}, "x")


def descriptions(*names):
    table = {
        "bcp": describe(settings(ssl={"method": "bcp"}, loop={"rounds": 0})),
        "aslseg": describe(settings(ssl={"method": "bcp"}, loop={"rounds": 2})),
        "supervised": describe(settings(ssl={"method": "supervised"}, loop={"rounds": 0})),
    }
    return {name: with_volume_counts(table[name], SPLIT) for name in names}


def test_tables_report_each_experiments_last_round_as_mean_and_sample_sd_over_seeds():
    table = paper_table(RUNS, descriptions("bcp", "aslseg", "supervised")).set_index("experiment")
    assert list(table.index) == ["bcp", "aslseg", "supervised"]  # the order asked for
    assert table.loc["aslseg", "dice_mean"] == pytest.approx(0.72)
    assert table.loc["aslseg", "dice_sd"] == pytest.approx(0.02)  # ddof=1
    assert table.loc["bcp", "dice_sd"] == pytest.approx(0.1)
    assert table.loc["aslseg", "seeds"] == "0 1 2" and table.loc["aslseg", "n_seeds"] == 3
    assert table.loc["supervised", "n_seeds"] == 1 and np.isnan(table.loc["supervised", "dice_sd"])


def test_descriptions_say_which_stages_and_volumes_an_experiment_uses():
    described = descriptions("bcp", "aslseg", "supervised")
    assert described["supervised"]["unlabeled_volumes"] == 0 and described["bcp"]["unlabeled_volumes"] == 4
    assert all(d["labeled_volumes"] == 1 for d in described.values())
    assert described["aslseg"].items() >= {"sam": True, "sam_fine_tuned": True, "adaptation_network": True,
                                           "prompt": "box", "selection": "calibrated", "rounds": 2}.items()
    assert not described["bcp"]["sam"] and described["bcp"]["prompt"] == ""  # no loop: no Stage II or III
    zero_shot = describe(settings(sam={"finetune": {"enabled": False}}))
    assert zero_shot["sam"] and not zero_shot["sam_fine_tuned"]
    no_sam = describe(settings(sam={"enabled": False}, select={"agreement_weight": 0.0, "sam_iou_weight": 0.0,
                                                                        "confidence_weight": 1.0}))
    assert not no_sam["sam"] and not no_sam["adaptation_network"]  # AN refines SAM's masks: none without SAM


def test_markdown_prints_percent_and_mm_with_sd_only_where_there_are_seeds():
    table = paper_table(RUNS, descriptions("aslseg", "supervised"))
    text = to_markdown(table, METHODS_COLUMNS)
    lines = text.splitlines()
    assert lines[0] == "| Experiment | Stage I | Labeled | Unlabeled | Rounds | Dice (%) | Jaccard (%) | 95HD (mm) | ASD (mm) | Dice, predicted liver (%) | Seeds |"
    assert lines[2].startswith("| aslseg | bcp | 1 | 4 | 2 | 72.00 ± 2.00 | 36.00 ± 1.00 | 10.00 ± 0.00 |")
    assert lines[3] == "| supervised | supervised | 1 | 0 | 0 | 30.00 | 15.00 | n/a | n/a | 25.00 | 0 |"
    ablation = to_markdown(paper_table(RUNS, descriptions("bcp", "aslseg")), ABLATION_COLUMNS).splitlines()
    assert "| bcp | bcp | – | – |  | – |  | 0 |" in ablation[2] and "| aslseg | bcp | ✓ | ✓ | box | ✓ | calibrated | 2 |" in ablation[3]


def case_rows(experiment, dices, seed=0):
    rows = [{"experiment": experiment, "seed": seed, "case_id": case, "dice": dice, "gt_empty": False}
            for case, dice in enumerate(dices)]
    return rows + [{"experiment": experiment, "seed": seed, "case_id": 99, "dice": 0.0, "gt_empty": True}]


def test_the_paired_comparison_matches_seed_and_volume_and_skips_tumor_free_volumes():
    bcp = case_rows("bcp", [0.1 * i for i in range(10)]) + case_rows("bcp", [0.5] * 10, seed=1)
    better = case_rows("aslseg", [0.1 * i + 0.05 + 0.001 * i for i in range(10)]) + case_rows("aslseg", [0.5] * 10, seed=1)
    same = case_rows("supervised", [0.1 * i for i in range(10)])  # seed 0 only: 10 pairs
    paired = paired_dice_test(pd.DataFrame(bcp + better + same), "bcp")
    assert paired.loc["aslseg", "n_pairs"] == 20 and paired.loc["supervised", "n_pairs"] == 10
    assert paired.loc["aslseg", "dice_vs_reference"] == pytest.approx(np.mean([0.05 + 0.001 * i for i in range(10)] + [0] * 10))
    assert paired.loc["aslseg", "p_vs_reference"] < 0.01  # ten of ten untied pairs better
    assert np.isnan(paired.loc["supervised", "p_vs_reference"]) and np.isnan(paired.loc["bcp", "p_vs_reference"])
    table = paper_table(RUNS, descriptions("bcp", "aslseg"), paired)
    lines = to_markdown(table, METHODS_COLUMNS, "bcp").splitlines()
    assert lines[0].endswith("| ASD (mm) | Dice, predicted liver (%) | Dice vs bcp (%, paired) | Seeds |")
    assert lines[2].endswith("| reference | 0 1 2 |") and "| +2.73 (p = 0.00" in lines[3]
    with pytest.raises(ValueError, match="cps"):
        paired_dice_test(pd.DataFrame(bcp), "cps")


def test_a_table_without_runs_for_an_experiment_says_which():
    with pytest.raises(ValueError, match="cps"):
        paper_table(RUNS, {**descriptions("bcp"), "cps": descriptions("bcp")["bcp"]})


def volume(case_id, tumor_pixels_per_slice):
    tumor = np.zeros((len(tumor_pixels_per_slice), 8, 8), dtype=np.uint8)
    for index, pixels in enumerate(tumor_pixels_per_slice):
        tumor[index].flat[:pixels] = 1
    return Volume(case_id, np.zeros(tumor.shape, np.float32), tumor, (1.0, 1.0, 1.0), np.ones_like(tumor))


def test_comparison_slices_are_each_volumes_largest_tumor_slice_from_small_to_large():
    volumes = [volume(0, [0, 5, 9]), volume(1, [2, 1]), volume(2, [0, 0]), volume(3, [30, 4]), volume(4, [12])]
    assert choose_slices(volumes, 2) == [(1, 0), (3, 0)]  # the smallest and the largest lesion
    assert choose_slices(volumes, 4) == [(1, 0), (0, 2), (4, 0), (3, 0)]  # each volume's slice with most tumor
    assert choose_slices(volumes, 10) == choose_slices(volumes, 4)  # the tumor-free volume never shows
    with pytest.raises(ValueError, match="no test volume has tumor"):
        choose_slices([volume(2, [0, 0])], 2)


def test_figures_are_drawn(tmp_path):
    truth = np.zeros((16, 16), bool)
    truth[4:9, 4:9] = True
    comparison_figure([np.zeros((16, 16))] * 2, [truth] * 2, ["a", "b"],
                      {"bcp": [truth, ~truth], "aslseg": [truth, truth]}, tmp_path / "comparison.png")
    assert plt.imread(tmp_path / "comparison.png").ndim == 3
    pseudo = pd.DataFrame([{"experiment": "aslseg", "round": r, "seed": s, "pl1_dice_unlabeled": 0.3,
                            "pl3_dice_unlabeled": 0.4, "selection_precision": 0.5} for r in (0, 1) for s in (0, 1)])
    rounds_figure(RUNS, pseudo, ["aslseg"], tmp_path / "rounds.png")
    assert plt.imread(tmp_path / "rounds.png").ndim == 3
