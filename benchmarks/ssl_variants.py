"""Stage I under setting variants: train SS(.) with the default settings plus each variant's overrides, on the
same split and seed, and compare training time, best val Dice and test metrics. Each model is evaluated with
its own settings (precision, features), as the workflow would.

Variants are NAME=JSON, the JSON object overriding keys of the ssl section. Without --variant: float32 vs
bf16 autocast (does ssl.bf16 cost any quality?). With --train-seeds N, each split seed S is also trained
with training seeds S + 1000, ..., S + 1000 (N - 1) on the same split (S itself is the workflow's seed), so a
variant's effect can be told from one training's own variance; the table ends with each variant's test Dice
as mean ± sd over every training and the sd within a split, and its paired difference to the first variant.

Run after the data stage (`make run` or `snakemake --cores 2`), the machine otherwise quiet:
    .venv/bin/python benchmarks/ssl_variants.py --methods supervised bcp --seeds 0 1
    .venv/bin/python benchmarks/ssl_variants.py --variant default='{}' \\
        --variant narrow='{"features": [8, 16, 32, 64, 128, 8]}'
    .venv/bin/python benchmarks/ssl_variants.py --methods supervised --seeds 0 1 2 --train-seeds 2 \\
        --variant default='{}' --variant average='{"weight_average": 0.99}'
A seed's split must exist: results/data/splits/labeled-<fraction>/seed-<seed>.json (snakemake builds it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from aslseg.config import default_config
from aslseg.metrics import summarize
from aslseg.prepared import PreparedFiles
from aslseg.ssl.evaluation import score_volumes
from aslseg.seg2d.network import build_network
from aslseg.ssl.settings import TrainSettings, method_settings
from aslseg.ssl.slices import load_slices
from aslseg.ssl.train import train

PRECISION_VARIANTS = ["fp32={\"bf16\": false}", "bf16={\"bf16\": true}"]


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, overrides = text.partition("=")
    try:
        value = json.loads(overrides)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--variant {text!r}: the part after '=' is not JSON ({error})")
    if not name or not isinstance(value, dict):
        raise SystemExit(f"--variant {text!r}: expected NAME={{\"ssl key\": value, ...}}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--methods", nargs="+", default=["supervised", "bcp"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variant", action="append", default=None, metavar="NAME=JSON")
    parser.add_argument("--train-seeds", type=int, default=1, metavar="N",
                        help="trainings per split seed (training seeds S, S + 1000, ...)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant or PRECISION_VARIANTS]
    torch.set_num_threads(args.threads)
    config = default_config()
    results = Path(args.results)
    prepared = results / "data" / "prepared"
    files = PreparedFiles(sorted(map(str, (prepared / "images").glob("case-*.npz"))),
                          sorted(map(str, (prepared / "labels").glob("case-*.npz"))))
    splits = results / "data" / "splits" / f"labeled-{config['data']['split']['labeled']}"
    print("| method | seed | training seed | variant | train s | best iteration | best val Dice | test Dice | lesion prec. "
          "| FP lesions | FP mL tumor-free |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for seed in args.seeds:
        split = json.loads((splits / f"seed-{seed}.json").read_text())
        labeled = load_slices([files.image(c) for c in split["labeled"]], [files.label(c) for c in split["labeled"]])
        unlabeled = load_slices([files.image(c) for c in split["unlabeled"]])
        val = [files.volume(c) for c in split["val"]]
        test = [files.volume(c) for c in split["test"]]
        for method in args.methods:
            for train_seed in (seed + 1000 * k for k in range(args.train_seeds)):
                for name, overrides in variants:
                    ssl = method_settings({**config["ssl"], **overrides, "method": method})
                    settings = TrainSettings.from_config(ssl)
                    result = train(method, labeled, unlabeled, val, settings, seed=train_seed, progress=False)
                    model = build_network(ssl["features"], bf16=result.precision.bf16)
                    model.load_state_dict(result.state_dict)
                    metrics = summarize(score_volumes(model, test, ssl["threshold"]))
                    rows.append({"method": method, "seed": seed, "train_seed": train_seed, "variant": name,
                                 "dice": metrics["dice_mean"],
                                 "fp_lesions": metrics["pred_lesions"] - metrics["true_pred_lesions"],
                                 "fp_ml": metrics["fp_volume_ml_tumor_free"]})
                    print(f"| {method} | {seed} | {train_seed} | {name} | {result.seconds:.0f} | "
                          f"{result.best_iteration} | {result.best_val_dice:.3f} | {metrics['dice_mean']:.3f} | "
                          f"{metrics['lesion_precision'] or 0:.2f} | {rows[-1]['fp_lesions']} | {rows[-1]['fp_ml']:.1f} |",
                          flush=True)
    print_spread(pd.DataFrame(rows), [name for name, _ in variants])


def print_spread(rows: pd.DataFrame, variants: list[str]) -> None:
    """Per method and variant: test Dice over all trainings, the mean sd within a split (one training's own
    variance), the paired difference (same split and training seed) to the first variant, and the mean
    false-positive counts (lesions on every test volume, mL on the tumor-free ones)."""
    print("\n| method | variant | trainings | test Dice, mean ± sd | sd within a split | paired − first variant "
          "| FP lesions | FP mL tumor-free |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for method, table in rows.groupby("method", sort=False):
        wide = table.pivot_table(index=["seed", "train_seed"], columns="variant", values="dice")
        for name in variants:
            trainings = table[table["variant"] == name]
            within = trainings.groupby("seed")["dice"].std(ddof=1).mean()
            paired = wide[name] - wide[variants[0]]
            print(f"| {method} | {name} | {len(wide)} | {wide[name].mean():.3f} ± {wide[name].std(ddof=1):.3f} | "
                  f"{within:.3f} | {paired.mean():+.3f} ± {paired.std(ddof=1):.3f} | "
                  f"{trainings['fp_lesions'].mean():.0f} | {trainings['fp_ml'].mean():.1f} |")


if __name__ == "__main__":
    main()
