"""(Evaluation only: reads hidden tumor labels.) Which per-slice feature would pick right pseudo labels?

For one selection folder (a round's scores.csv), join every eligible slice (PL1 or PL3 non-empty) with its
hidden ground truth and report, per feature, its rank correlation with "the final label is right" (slice Dice
>= aslseg.metrics.CORRECT_SLICE_DICE) and the precision of the slices in its top fifth. A feature whose
top fifth is no more precise than all eligible slices cannot rescue the selection: Stage I or III must change.

    .venv/bin/python benchmarks/selection_features.py results/ssl/<run>/seed-0/sam-<M>/adapt-<A>/select-<Z>
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import spearmanr

from aslseg.dice import slice_dice
from aslseg.metrics import CORRECT_SLICE_DICE
from aslseg.pseudo_labels import read_masks, read_probabilities


def stage_arrays(folder: Path) -> tuple[dict, dict]:
    shards = sorted(folder.glob("*.npz"))
    return read_masks(shards), read_probabilities(shards)


def slice_features(select_dir: Path, labels_dir: Path) -> pd.DataFrame:
    adapt_dir, sam_dir = select_dir.parent, select_dir.parent.parent
    model_dir = sam_dir.parent
    pl1, p1 = stage_arrays(model_dir / "pl1")
    final_dir = adapt_dir / "pl3" if (adapt_dir / "pl3").is_dir() else sam_dir / "pl2"
    final, p_final = stage_arrays(final_dir if final_dir.is_dir() else model_dir / "pl1")
    scores = pd.read_csv(select_dir / "scores.csv")
    truth = {case: np.load(labels_dir / f"case-{case}.npz")["tumor"].astype(bool) for case in scores.case.unique()}
    rows = []
    for row in scores.itertuples():
        gt = truth[row.case][row.position]
        first, last = pl1[row.case][row.position].astype(bool), final[row.case][row.position].astype(bool)
        labels, n = ndimage.label(first)
        prob1 = p1[row.case][row.position].astype(np.float32)
        rows.append({
            "case": row.case, "position": row.position, "accepted": row.accepted, "score": row.score,
            "agreement": row.agreement, "sam_iou": row.sam_iou, "confidence": row.confidence,
            "pl1_pixels": int(first.sum()), "final_pixels": int(last.sum()), "pl1_components": n,
            "pl1_mean_probability": prob1[first].mean() if first.any() else np.nan,
            "pl1_weakest_component": min(prob1[labels == k].mean() for k in range(1, n + 1)) if n else np.nan,
            "final_mean_probability": p_final[row.case][row.position][last].astype(np.float32).mean() if last.any() else np.nan,
            "dice": float(slice_dice(last[None], gt[None])[0]),
        })
    table = pd.DataFrame(rows)
    table["right"] = table.dice >= CORRECT_SLICE_DICE
    return table


def eligible_slices(table: pd.DataFrame) -> pd.DataFrame:
    """The slices a selection could accept: PL1 or the final label is non-empty."""
    return table[(table.pl1_pixels > 0) | (table.final_pixels > 0)]


def feature_table(table: pd.DataFrame) -> pd.DataFrame:
    eligible = eligible_slices(table)
    rows = []
    for feature in ["score", "agreement", "sam_iou", "confidence", "pl1_mean_probability", "pl1_weakest_component",
                    "final_mean_probability", "pl1_pixels", "pl1_components"]:
        values = eligible[feature].astype(float)
        known = values.notna()
        if known.sum() < 3:
            continue
        top = eligible[known & (values >= values[known].quantile(0.8))]
        rows.append({"feature": feature, "spearman_with_right": spearmanr(values[known], eligible.right[known]).correlation,
                     "top_fifth_slices": len(top), "top_fifth_precision": top.right.mean()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("select_dir", type=Path)
    parser.add_argument("--results", type=Path, default=None, help="results folder (default: above select_dir)")
    args = parser.parse_args()
    results = args.results or next(p for p in args.select_dir.resolve().parents if (p / "data").is_dir())
    table = slice_features(args.select_dir, results / "data" / "prepared" / "labels")
    eligible = eligible_slices(table)
    accepted = table[table.accepted]
    print(f"{len(table)} slices scored, {len(eligible)} eligible, {int(eligible.right.sum())} of them right "
          f"(precision of taking all: {eligible.right.mean():.3f}); accepted {len(accepted)}, "
          f"precision {accepted.right.mean() if len(accepted) else float('nan'):.3f}")
    print(feature_table(table).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
