"""Median wall time, CPU time and peak memory per rule, from the `benchmark:` files Snakemake writes.

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
        runs = pd.concat([pd.read_csv(f, sep="\t") for f in sorted(rule_dir.glob("*.tsv"))])
        rows.append({
            "rule": rule_dir.name,
            "jobs": len(runs),
            "median_s": runs["s"].median(),
            "max_s": runs["s"].max(),
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
    print(rule_table(Path(args.results) / "benchmarks", args.rules).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
