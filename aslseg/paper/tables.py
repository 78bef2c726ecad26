"""The paper's tables: each experiment's final-round test metrics, mean and sd over run seeds, with what the
experiment is (Stage I method, labeled and unlabeled volumes, which loop stages it runs).

Input is a runs table (one row per experiment x round x seed, the columns of results/summary.csv) and the
final rounds' per-volume test rows (for the paired comparison with a reference experiment); output a CSV with
the numbers and a Markdown table with them formatted the way papers print them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

# (column in the runs table, heading, scale, decimals): overlap in %, distances in mm, as the paper reports.
METRICS = [
    ("dice", "Dice (%)", 100.0, 2),
    ("jaccard", "Jaccard (%)", 100.0, 2),
    ("hd95_mm", "95HD (mm)", 1.0, 2),
    ("asd_mm", "ASD (mm)", 1.0, 2),
    ("dice_predicted_liver", "Dice, predicted liver (%)", 100.0, 2),
]
# Also in the CSV: lesion detection and false positives on tumor-free test volumes, the liver model's Dice.
EXTRA_METRICS = ["lesion_sensitivity", "lesion_precision", "fp_volume_ml_tumor_free", "liver_dice"]


def describe(settings: dict) -> dict:
    """What an experiment is, from its effective config: the Stage I method, the labeled fraction, whether
    it learns from the unlabeled volumes (not a supervised Stage I without a loop), and the loop's stages."""
    method, rounds = settings["ssl"]["method"], settings["loop"]["rounds"]
    sam, adapt = settings["sam"], settings["adapt"]
    in_loop = rounds >= 1
    return {
        "ssl_method": method,
        "labeled_fraction": settings["data"]["split"]["labeled"],
        "uses_unlabeled": method != "supervised" or in_loop,
        "rounds": rounds,
        "sam": in_loop and sam["enabled"],
        "sam_fine_tuned": in_loop and sam["enabled"] and sam["finetune"]["enabled"],
        "prompt": sam["prompt"] if in_loop and sam["enabled"] else "",
        "adaptation_network": in_loop and sam["enabled"] and adapt["enabled"],
        "selection": settings["select"]["rule"] if in_loop else "",
    }


def with_volume_counts(description: dict, split: dict) -> dict:
    """The description with the labeled and unlabeled volumes the experiment trains on under `split` (the
    counts are the same for every seed: each seed redraws which volumes, not how many)."""
    unlabeled = len(split["unlabeled"]) if description["uses_unlabeled"] else 0
    return {**description, "labeled_volumes": len(split["labeled"]), "unlabeled_volumes": unlabeled}


def final_rounds(runs: pd.DataFrame, rounds: dict[str, int]) -> pd.DataFrame:
    """The rows of each experiment's last round (the model the experiment ends with)."""
    final = runs["round"] == runs["experiment"].map(rounds)
    return runs[final]


def seed_statistics(runs: pd.DataFrame, experiments: list[str]) -> pd.DataFrame:
    """Per experiment (in the given order): mean and sample sd over seeds of every metric, and the seeds."""
    metrics = [column for column, *_ in METRICS] + EXTRA_METRICS
    missing = [name for name in experiments if name not in set(runs["experiment"])]
    if missing:
        raise ValueError(f"the runs table has no rows for {missing}")
    grouped = runs.groupby("experiment", sort=False)
    table = pd.DataFrame(index=pd.Index(experiments, name="experiment"))
    table["seeds"] = grouped["seed"].apply(lambda seeds: " ".join(str(s) for s in sorted(seeds)))
    table["n_seeds"] = grouped["seed"].nunique()
    for metric in metrics:
        table[f"{metric}_mean"] = grouped[metric].mean()
        table[f"{metric}_sd"] = grouped[metric].std(ddof=1)  # NaN with one seed: no spread to report
    return table


def paper_table(runs: pd.DataFrame, descriptions: dict[str, dict], paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per experiment of `descriptions` (in its order): its description, then its final-round
    metrics' mean and sd over seeds, then (given `paired`, from paired_dice_test) its paired comparison."""
    rounds = {name: description["rounds"] for name, description in descriptions.items()}
    statistics = seed_statistics(final_rounds(runs, rounds), list(descriptions))
    table = pd.DataFrame.from_dict(descriptions, orient="index").join(statistics)
    if paired is not None:
        table = table.join(paired)
    return table.rename_axis("experiment").reset_index()


def paired_dice_test(cases: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per experiment, against `reference`: the mean Dice difference over its (seed, test volume with tumor)
    pairs with the reference's final model of the same seed, and the two-sided Wilcoxon signed-rank p-value
    of those differences (NaN for the reference itself, or where every pair ties). `cases` holds the final
    rounds' test_cases.csv rows with their experiment and seed."""
    tumor = cases[~cases["gt_empty"].astype(bool)]
    if reference not in set(tumor["experiment"]):
        raise ValueError(f"no test cases of the reference experiment {reference!r}")
    base = tumor[tumor["experiment"] == reference].set_index(["seed", "case_id"])["dice"]
    rows = {}
    for name, group in tumor.groupby("experiment", sort=False):
        own, matched = group.set_index(["seed", "case_id"])["dice"].align(base, join="inner")
        difference = own - matched
        tested = name != reference and bool((difference != 0).any())
        rows[name] = {"dice_vs_reference": difference.mean(), "n_pairs": len(difference),
                      "p_vs_reference": wilcoxon(difference).pvalue if tested else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


def _mean_sd(mean: float, sd: float, scale: float, decimals: int) -> str:
    if pd.isna(mean):
        return "n/a"  # e.g. 95HD on a volume set where every prediction is empty
    text = f"{mean * scale:.{decimals}f}"
    return text if pd.isna(sd) else f"{text} ± {sd * scale:.{decimals}f}"


def _cell(value) -> str:
    if isinstance(value, bool):
        return "✓" if value else "–"
    return str(value)


def _paired(row, reference: str) -> str:
    if row["experiment"] == reference:
        return "reference"
    if pd.isna(row["dice_vs_reference"]):
        return "n/a"
    difference = f"{100 * row['dice_vs_reference']:+.2f}"
    return difference if pd.isna(row["p_vs_reference"]) else f"{difference} (p = {row['p_vs_reference']:.2g})"


def to_markdown(table: pd.DataFrame, columns: dict[str, str], reference: str | None = None) -> str:
    """A Markdown table: the description columns (name -> heading), then each metric as mean ± sd (sd left
    out where there is one seed), then (with `reference`) the paired Dice difference to it, then the seeds."""
    paired = [f"Dice vs {reference} (%, paired)"] if reference else []
    headings = ["Experiment", *columns.values(), *(heading for _, heading, _, _ in METRICS), *paired, "Seeds"]
    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join(" --- " for _ in headings) + "|"]
    for _, row in table.iterrows():
        cells = [row["experiment"], *(_cell(row[column]) for column in columns)]
        cells += [_mean_sd(row[f"{m}_mean"], row[f"{m}_sd"], scale, decimals) for m, _, scale, decimals in METRICS]
        cells += [_paired(row, reference)] if reference else []
        cells.append(str(row["seeds"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# The two tables: which description columns each shows, with their headings.
METHODS_COLUMNS = {"ssl_method": "Stage I", "labeled_volumes": "Labeled", "unlabeled_volumes": "Unlabeled",
                   "rounds": "Rounds"}
ABLATION_COLUMNS = {"ssl_method": "Stage I", "sam": "SAM", "sam_fine_tuned": "SAM fine-tuned", "prompt": "Prompt",
                    "adaptation_network": "AN", "selection": "Selection", "rounds": "Rounds"}
