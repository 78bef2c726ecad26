"""Draw docs/figures/synthetic_pseudo_labels.png: what AN(.) trains on. For a few labeled slices: the image
with its ground truth, the corrupted ground truth (synthetic PL1, with the corruptions drawn) and SAM's masks
for its prompts (synthetic PL2), the input AN learns to correct.

Run after adapt_synthesize:  .venv/bin/python docs/figures/synthetic_pseudo_labels.py [--results results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def outline(axis, mask: np.ndarray, color: str) -> None:
    if mask.any():
        axis.contour(mask.astype(float), levels=[0.5], colors=color, linewidths=1.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default="results")
    parser.add_argument("--examples", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".png")))
    args = parser.parse_args()
    results = Path(args.results)
    path = sorted(results.glob("adapt/synthetic/*/labeled-*/seed-0/synthetic.npz"))[0]
    summary = json.loads(path.with_suffix(".json").read_text())
    with np.load(path) as synthetic:
        case, position = synthetic["train_case"], synthetic["train_position"]
        pl1, pl2 = synthetic["train_pl1"], synthetic["train_pl2"]
    truth = {}
    for c in np.unique(case):
        with np.load(results / f"data/prepared/labels/case-{c}.npz") as label:
            truth[int(c)] = label["tumor"]
    with_tumor = [i for i in range(len(case)) if truth[int(case[i])][position[i]].any()]
    chosen = np.linspace(0, len(with_tumor) - 1, args.examples).round().astype(int)
    fig, axes = plt.subplots(2, args.examples, figsize=(3.2 * args.examples, 6.6), squeeze=False)
    for column, index in enumerate(np.asarray(with_tumor)[chosen]):
        c, p = int(case[index]), int(position[index])
        with np.load(results / f"data/prepared/images/case-{c}.npz") as prepared:
            image = prepared["image"][p].astype(np.float32)
        gt = truth[c][p]
        top, bottom = axes[0, column], axes[1, column]
        for axis in (top, bottom):
            axis.imshow(image, cmap="gray", vmin=0, vmax=1)
            axis.set_axis_off()
            outline(axis, gt, "lime")
        outline(top, pl1[index], "red")
        outline(bottom, pl2[index], "yellow")
        top.set_title(f"case {c}, slice {p}", fontsize=9)
    axes[0, 0].text(-0.05, 0.5, "ground truth (green)\nsynthetic PL1 (red)", transform=axes[0, 0].transAxes,
                    ha="right", va="center", fontsize=9)
    axes[1, 0].text(-0.05, 0.5, "ground truth (green)\nsynthetic PL2 = SAM (yellow)", transform=axes[1, 0].transAxes,
                    ha="right", va="center", fontsize=9)
    applied = summary["train"]["corruptions_applied"]
    fig.suptitle(f"AN's training data: {summary['train']['examples']} synthetic examples; corruptions drawn: "
                 + ", ".join(f"{k} {v}" for k, v in applied.items()), fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
