"""The paper's figures: a visual comparison of the methods on test slices (the paper's Figure 3) and the loop
round by round (test Dice, pseudo-label quality, selection precision).

Drawn with matplotlib's Agg backend (no screen); the functions take arrays and tables, not files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aslseg.dice import slice_dice
from aslseg.prepared import Volume

TRUTH_COLOR, PREDICTION_COLOR = "lime", "red"


def choose_slices(volumes: list[Volume], count: int) -> list[tuple[int, int]]:
    """(case id, slice index) of up to `count` test volumes with tumor: each volume's slice with the most
    tumor, picked at evenly spaced ranks of that area, so the figure spans small to large lesions."""
    candidates = []
    for volume in volumes:
        areas = volume.tumor.reshape(len(volume.tumor), -1).sum(axis=1)
        if areas.max() > 0:
            candidates.append((int(areas.max()), volume.case_id, int(areas.argmax())))
    if not candidates:
        raise ValueError("no test volume has tumor: there is nothing to compare")
    candidates.sort()
    ranks = np.unique(np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round().astype(int))
    return [(candidates[rank][1], candidates[rank][2]) for rank in ranks]


def _outline(axis, mask: np.ndarray, color: str) -> None:
    if mask.any():
        axis.contour(mask.astype(float), levels=[0.5], colors=color, linewidths=1.0)


def comparison_figure(images: list[np.ndarray], truths: list[np.ndarray], labels: list[str],
                      predictions: dict[str, list[np.ndarray]], path: str | Path) -> None:
    """One row per slice: the image, the ground truth, then each method's mask (red) over the ground truth
    (green) with its slice Dice."""
    columns = 2 + len(predictions)
    fig, axes = plt.subplots(len(images), columns, figsize=(2.1 * columns, 2.2 * len(images) + 0.4), squeeze=False)
    for row, (image, truth, label) in enumerate(zip(images, truths, labels)):
        for axis in axes[row]:
            axis.imshow(image, cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=8)
        _outline(axes[row, 1], truth, TRUTH_COLOR)
        for column, (name, masks) in enumerate(predictions.items(), start=2):
            _outline(axes[row, column], truth, TRUTH_COLOR)
            _outline(axes[row, column], masks[row], PREDICTION_COLOR)
            dice = slice_dice(masks[row][None].astype(bool), truth[None].astype(bool))[0]
            axes[row, column].set_xlabel(f"Dice {dice:.2f}", fontsize=8)
    for column, title in enumerate(["Image", "Ground truth", *predictions]):
        axes[0, column].set_title(title, fontsize=9)
    fig.suptitle("Test slices: ground truth (green), prediction (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _by_round(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean and sd over seeds of `column` per round."""
    return table.groupby("round")[column].agg(["mean", "std"]).reset_index()


def rounds_figure(runs: pd.DataFrame, pseudo_labels: pd.DataFrame, experiments: list[str], path: str | Path) -> None:
    """Per loop experiment, round by round (mean over seeds, bars: sd): the test Dice of each round's SS
    model; the Dice of PL1 (dashed) and of the final pseudo label (solid) on the round's unlabeled slices;
    and the share of the accepted slices whose pseudo label is right (selection precision)."""
    fig, (test_axis, label_axis, precision_axis) = plt.subplots(1, 3, figsize=(14, 4))
    for index, name in enumerate(experiments):
        color = f"C{index % 10}"
        test = _by_round(runs[runs["experiment"] == name], "dice")
        test_axis.errorbar(test["round"], 100 * test["mean"], yerr=100 * test["std"].fillna(0), color=color,
                           marker="o", capsize=3, label=name)
        labels = pseudo_labels[pseudo_labels["experiment"] == name]
        for column, style in (("pl1_dice_unlabeled", "--"), ("pl3_dice_unlabeled", "-")):
            curve = _by_round(labels, column)
            label_axis.plot(curve["round"], 100 * curve["mean"], style, color=color, marker="o")
        precision = _by_round(labels, "selection_precision")
        precision_axis.errorbar(precision["round"], 100 * precision["mean"], yerr=100 * precision["std"].fillna(0),
                                color=color, marker="o", capsize=3)
    test_axis.set(title="SS(·) on the test set", xlabel="round", ylabel="Dice (%)")
    label_axis.set(title="Pseudo labels on the round's unlabeled slices\n(dashed: PL1, solid: final label)",
                   xlabel="round", ylabel="Dice (%)")
    precision_axis.set(title="Accepted slices with a right label\n(slice Dice ≥ 0.5)", xlabel="round",
                       ylabel="selection precision (%)")
    for axis in (test_axis, label_axis, precision_axis):
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
    test_axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
