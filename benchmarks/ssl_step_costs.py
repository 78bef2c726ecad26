"""Seconds per training iteration of each SS(.) method at the default settings on the default phantom's
split (labeled seed 0), in float32 and under bf16 autocast, and what the default iterations cost in the
precision `auto` picks on this CPU: the ssl_train budget without running it whole.

    .venv/bin/python benchmarks/ssl_step_costs.py [--results results] [--iterations 30] [--threads 2]

Times `train()` over --iterations steps (no validation volumes), after a 3-step warm-up, and before that the
augmentation of one labeled batch alone (median of 20).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from aslseg.config import default_config
from aslseg.precision import cpu_report, resolve_bf16
from aslseg.seg2d.augment import Augmenter
from aslseg.ssl.settings import METHOD_SETTINGS, TrainSettings, method_settings
from aslseg.ssl.slices import load_slices
from aslseg.ssl.train import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = json.loads((args.results / "data/splits/labeled-0.1/seed-0.json").read_text())
    prepared = args.results / "data/prepared"
    labeled = load_slices([prepared / f"images/case-{c}.npz" for c in split["labeled"]],
                          [prepared / f"labels/case-{c}.npz" for c in split["labeled"]])
    unlabeled = load_slices([prepared / f"images/case-{c}.npz" for c in split["unlabeled"]])
    config = default_config()["ssl"]
    print(cpu_report())
    print(f"{args.threads} threads, {len(labeled)} labeled and {len(unlabeled)} unlabeled slices")
    settings = TrainSettings.from_config(method_settings(config))
    augment = Augmenter(settings.rotate_deg, settings.scale, settings.intensity, settings.flip, seed=0)
    batch = slice(0, settings.batch_size)
    seconds = []
    for _ in range(23):
        start = time.perf_counter()
        augment(labeled.image[batch], labeled.tumor[batch])
        seconds.append(time.perf_counter() - start)
    print(f"augmentation of {settings.batch_size} labeled slices: {1000 * statistics.median(seconds[3:]):.1f} ms")
    auto = resolve_bf16(config["bf16"], "cpu").bf16
    print(f"| method | fp32 s per iteration | bf16 s per iteration | {config['iterations']} iterations in "
          f"{'bf16' if auto else 'fp32'} (auto, min) |")
    print("| --- | --- | --- | --- |")
    for method in METHOD_SETTINGS:
        settings = TrainSettings.from_config(method_settings({**config, "method": method}))
        per_step = {}
        for bf16 in (False, True):
            steps = dataclasses.replace(settings, iterations=3, val_every=10**6, bf16=bf16)
            train(method, labeled, unlabeled, [], steps, seed=0, progress=False)  # warm-up
            result = train(method, labeled, unlabeled, [], dataclasses.replace(steps, iterations=args.iterations),
                           seed=0, progress=False)
            per_step[bf16] = result.seconds / args.iterations
        print(f"| {method} | {per_step[False]:.2f} | {per_step[True]:.2f} | "
              f"{per_step[auto] * config['iterations'] / 60:.1f} |")


if __name__ == "__main__":
    main()
