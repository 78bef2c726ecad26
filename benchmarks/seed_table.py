"""Test metrics per experiment and round as mean ± sd over run seeds (each seed redraws the labeled volumes;
sd with ddof=1), the per-seed Dice beside them, and the wall time and peak memory of the round's ssl_train.

    .venv/bin/python benchmarks/seed_table.py [--results results]

Reads results/summary.csv and Snakemake's benchmark files; prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

METRICS = ["dice", "jaccard", "hd95_mm", "asd_mm", "lesion_sensitivity", "lesion_precision", "fp_volume_ml_tumor_free"]


def train_benchmark(results: Path, run: str, seed: int, round_index: int) -> Path:
    """The ssl_train benchmark file of a summary row (aslseg/artifacts.py names the model folders); runs made
    before rounds existed kept theirs as <run>_seed-<seed>.tsv."""
    model = f"ssl/{run}/seed-{seed}" if round_index == 0 else f"loop/{run}/seed-{seed}/round-{round_index}"
    path = results / "benchmarks/ssl_train" / f"{model}.tsv"
    return path if path.is_file() else results / "benchmarks/ssl_train" / f"{run}_seed-{seed}.tsv"


def seed_table(results: Path) -> pd.DataFrame:
    summary = pd.read_csv(results / "summary.csv")
    rows = []
    for (experiment, round_index), runs in summary.groupby(["experiment", "round"], sort=False):
        row = {"experiment": experiment, "round": round_index, "seeds": len(runs)}
        for metric in METRICS:
            row[metric] = f"{runs[metric].mean():.3f} ± {runs[metric].std(ddof=1):.3f}"
        row["dice per seed"] = " / ".join(f"{d:.3f}" for d in runs.sort_values("seed")["dice"])
        times = [pd.read_csv(path, sep="\t").iloc[0] for run, seed in zip(runs["run"], runs["seed"])
                 for path in [train_benchmark(results, run, seed, round_index)] if path.is_file()]
        row["ssl_train s (median)"] = f"{pd.Series([t['s'] for t in times]).median():.0f}" if times else ""
        row["peak RSS GB"] = f"{max(t['max_rss'] for t in times) / 1024:.2f}" if times else ""
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, default=Path("results"))
    print(seed_table(parser.parse_args().results).to_markdown(index=False))


if __name__ == "__main__":
    main()
