"""Median and summed wall time, CPU time and peak memory per rule, from the `benchmark:` files Snakemake
writes (results/benchmarks/<rule>/..., nested by model folder). The summed wall time of a run whose jobs ran
one after another (two-thread jobs on two cores) is what the run cost.

    .venv/bin/python benchmarks/job_times.py [--results results] [rule ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def rule_table(benchmarks: Path, rules: list[str]) -> pd.DataFrame:
    rows = []
    for rule_dir in sorted(p for p in benchmarks.iterdir() if p.is_dir()):
        if rules and rule_dir.name not in rules:
            continue
        files = sorted(rule_dir.rglob("*.tsv"))
        if not files:
            continue
        runs = pd.concat([pd.read_csv(f, sep="\t") for f in files])
        rows.append({
            "rule": rule_dir.name,
            "jobs": len(runs),
            "median_s": runs["s"].median(),
            "max_s": runs["s"].max(),
            "sum_s": runs["s"].sum(),
            "sum_cpu_s": runs["cpu_time"].sum(),
            "median_max_rss_mb": runs["max_rss"].median(),
            "max_rss_mb": runs["max_rss"].max(),
        })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default="results")
    parser.add_argument("rules", nargs="*")
    args = parser.parse_args()
    table = rule_table(Path(args.results) / "benchmarks", args.rules)
    print(table.sort_values("sum_s", ascending=False).to_markdown(index=False, floatfmt=".1f"))
    print(f"\nall jobs: {table.sum_s.sum():.0f} s wall, {table.sum_cpu_s.sum():.0f} s CPU")


if __name__ == "__main__":
    main()
