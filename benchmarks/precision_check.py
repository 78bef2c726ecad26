"""Does bfloat16 autocast (ssl.bf16) cost Stage I any quality? Train SS(.) with the default settings on the
same split and seed in float32 and under bf16 autocast, and compare training time, best val Dice and test
metrics. Each model is evaluated in the precision it was trained in, as the workflow does.

Run after the data stage (`make run` or `snakemake --cores 2`); the machine otherwise quiet:
    .venv/bin/python benchmarks/precision_check.py --methods supervised bcp --seeds 0 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from aslseg.config import default_config
from aslseg.metrics import summarize
from aslseg.prepared import PreparedFiles
from aslseg.ssl.evaluation import score_volumes
from aslseg.ssl.network import build_network
from aslseg.ssl.settings import TrainSettings, method_settings
from aslseg.ssl.slices import load_slices
from aslseg.ssl.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--methods", nargs="+", default=["supervised", "bcp"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prepared = Path(args.results) / "data" / "prepared"
    files = PreparedFiles(sorted(map(str, (prepared / "images").glob("case-*.npz"))),
                          sorted(map(str, (prepared / "labels").glob("case-*.npz"))))
    print("| method | seed | precision | train s | best iteration | best val Dice | test Dice | lesion prec. |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for seed in args.seeds:
        split = json.loads((Path(args.results) / "data" / "splits" / f"seed-{seed}.json").read_text())
        labeled = load_slices([files.image(c) for c in split["labeled"]], [files.label(c) for c in split["labeled"]])
        unlabeled = load_slices([files.image(c) for c in split["unlabeled"]])
        val = [files.volume(c) for c in split["val"]]
        test = [files.volume(c) for c in split["test"]]
        for method in args.methods:
            ssl = method_settings({**default_config()["ssl"], "method": method})
            for bf16 in (False, True):
                settings = dataclasses.replace(TrainSettings.from_config(ssl), bf16=bf16)
                result = train(method, labeled, unlabeled, val, settings, seed=seed, progress=False)
                model = build_network(ssl["features"], bf16=bf16)
                model.load_state_dict(result.state_dict)
                metrics = summarize(score_volumes(model, test, ssl["threshold"]))
                print(f"| {method} | {seed} | {'bf16' if bf16 else 'fp32'} | {result.seconds:.0f} | "
                      f"{result.best_iteration} | {result.best_val_dice:.3f} | {metrics['dice_mean']:.3f} | "
                      f"{metrics['lesion_precision'] or 0:.2f} |", flush=True)


if __name__ == "__main__":
    main()
