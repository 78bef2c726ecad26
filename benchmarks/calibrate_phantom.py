"""Is the phantom a useful benchmark? Train SS(.) supervised on the 10% labeled volumes and on every training
volume ("full"), and score both on the test volumes. Useful means: full beats 10% clearly, and neither is
near 1.0.

Run after the data stage (`make run` or `snakemake --cores 2`):
    .venv/bin/python benchmarks/calibrate_phantom.py --seeds 0 1 --iterations 600
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from aslseg.config import default_config
from aslseg.metrics import summarize
from aslseg.prepared import PreparedFiles, Volume
from aslseg.ssl.evaluation import score_volumes
from aslseg.seg2d.network import build_network
from aslseg.ssl.slices import load_slices
from aslseg.ssl.settings import TrainSettings
from aslseg.ssl.train import train


def evaluate(state_dict: dict, settings: TrainSettings, volumes: list[Volume]) -> dict:
    model = build_network(settings.features, bf16=settings.bf16)
    model.load_state_dict(state_dict)
    return summarize(score_volumes(model, volumes, threshold=0.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--labeled", nargs="+", choices=["10%", "full"], default=["10%", "full"])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--foreground", type=float, default=0.5, help="share of each batch from tumor slices")
    parser.add_argument("--background-dice", action="store_true", help="Dice over both channels (MONAI default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=None, help="JSON file for the numbers (default: stdout only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prepared = Path(args.results) / "data" / "prepared"
    files = PreparedFiles(sorted(map(str, (prepared / "images").glob("case-*.npz"))),
                          sorted(map(str, (prepared / "labels").glob("case-*.npz"))))
    settings, _ = dataclasses.replace(
        TrainSettings.from_config(default_config()["ssl"]),
        iterations=args.iterations, batch_size=args.batch, lr=args.lr, foreground_fraction=args.foreground,
        val_every=max(1, args.iterations // 6), dice_include_background=args.background_dice,
    ).on_device(args.device)
    runs = []
    for seed in args.seeds:
        split_file = Path(args.results) / "data" / "splits" / "labeled-0.1" / f"seed-{seed}.json"
        split = json.loads(split_file.read_text())
        val = [files.volume(c) for c in split["val"]]
        test = [files.volume(c) for c in split["test"]]
        labeled_sets = {"10%": split["labeled"], "full": split["labeled"] + split["unlabeled"]}
        for name in args.labeled:
            cases = labeled_sets[name]
            labeled = load_slices(
                [files.image(c) for c in cases], [files.label(c) for c in cases]
            )
            start = time.perf_counter()
            result = train("supervised", labeled, None, val, settings, seed=seed, progress=False, device=args.device)
            summary = evaluate(result.state_dict, settings, test)
            run = {"seed": seed, "iterations": args.iterations, "lr": args.lr, "background_dice": args.background_dice, "labeled": name, "labeled_volumes": len(cases), "train_s": round(time.perf_counter() - start, 1),
                   "best_iteration": result.best_iteration, "val_dice": round(result.best_val_dice, 3), **summary}
            runs.append(run)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in run.items()}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
