"""Median and summed wall time, CPU time and peak memory per rule, from the `benchmark:` files Snakemake
writes (results/benchmarks/<rule>/..., nested by model folder). The summed wall time of a run whose jobs ran
one after another (two-thread jobs on two cores) is what the run cost. Also this machine's CPU and, from the
run's job logs, the precision each network ran in (the lines aslseg.precision writes).

    .venv/bin/python benchmarks/job_times.py [--results results] [rule ...]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from aslseg.precision import cpu_report

# "SS(.): bf16 autocast (auto: CPU ... has AVX512-BF16)", as Precision.describe writes it into job logs
PRECISION_LINE = re.compile(r"INFO ((?:SS|AN)\(\.\)|SAM's [a-z ]+|liver): (bf16 autocast|float32) \((.*)\)$")


def precisions_used(logs: Path) -> Counter:
    """(network, precision, reason) -> number of job logs that say so."""
    found = Counter()
    for log in logs.rglob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if match := PRECISION_LINE.search(line):
                found[match.groups()] += 1
    return found


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
    print(f"\nthis machine: {cpu_report()}")
    for (network, precision, reason), jobs in sorted(precisions_used(Path(args.results) / "logs").items()):
        print(f"{network}: {precision} in {jobs} jobs ({reason})")


if __name__ == "__main__":
    main()
