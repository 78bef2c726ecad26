"""(Evaluation only: reads hidden tumor labels.) Dice against misdetections across the tumor threshold.

Every model is judged at `ssl.threshold` (0.5). A model trained on more tumor-bearing slices (ASLseg's rounds
add pseudo-labeled slices that nearly all carry tumor) is more ready to call tumor, so at 0.5 it can mark more
false lesions than another model while separating tumor from liver better. This script tells the two apart:
for each model it scores the test volumes (and the val volumes' Dice) at several thresholds, so two models
can be compared at equal false-lesion counts as well as at the default threshold. Metrics as
aslseg.metrics defines them: mean 3D Dice over the test volumes with tumor, lesion sensitivity, false lesions
(predicted 3D components touching no true tumor) over all test volumes, false volume on the tumor-free ones.

With `--lesion-peaks`, each threshold's mask is also scored keeping only the 3D components whose peak
probability reaches each given value (hysteresis: the threshold sets a lesion's extent, the peak whether it is
one). Most false lesions are one- or two-voxel specks the network is unsure of, while true lesions peak near 1.

    .venv/bin/python benchmarks/operating_points.py --split results/data/splits/labeled-0.1/seed-{seed}.json \\
        results/ssl/<run>/seed-0/model.pt results/loop/<run>/seed-0/round-1/model.pt  [--lesion-peaks 0.8 0.9]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from aslseg.metrics import CONNECTIVITY, lesion_metrics, volume_dice
from aslseg.prepared import PreparedFiles
from aslseg.seg2d.network import predict_probabilities
from aslseg.ssl.checkpoint import load_model

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def confident_lesions(probability: np.ndarray, threshold: float, peak: float | None) -> np.ndarray:
    """The mask `probability > threshold`, less its 3D components whose highest probability is below `peak`
    (None: every component)."""
    mask = probability > threshold
    if peak is None or peak <= threshold:
        return mask
    labels, count = ndimage.label(mask, structure=CONNECTIVITY)
    if not count:
        return mask
    peaks = np.asarray(ndimage.maximum(probability, labels, index=np.arange(1, count + 1)))
    return np.concatenate([[False], peaks >= peak])[labels]


def operating_points(model: torch.nn.Module, val: list, test: list, thresholds, peaks=(None,)) -> list[dict]:
    """One row per threshold and lesion peak: val and test Dice, lesion sensitivity, false lesions, false volume
    (tumor-free)."""
    rows = {(t, h): {"val_dice": [], "test_dice": [], "gt_lesions": 0, "detected": 0, "false_lesions": 0,
                     "fp_ml_tumor_free": 0.0} for t in thresholds for h in peaks}
    for part, volumes in (("val", val), ("test", test)):
        for volume in volumes:
            probability = predict_probabilities(model, volume.image, region=volume.liver)
            has_tumor = bool(volume.tumor.any())
            for (t, h), row in rows.items():
                pred = confident_lesions(probability, t, h)
                if has_tumor:
                    row[f"{part}_dice"].append(volume_dice(pred, volume.tumor))
                if part == "val":
                    continue
                lesions = lesion_metrics(pred, volume.tumor, volume.spacing)
                row["gt_lesions"] += lesions["gt_lesions"]
                row["detected"] += lesions["detected_lesions"]
                row["false_lesions"] += lesions["pred_lesions"] - lesions["true_pred_lesions"]
                if not has_tumor:
                    row["fp_ml_tumor_free"] += lesions["fp_volume_ml"]
    return [{"threshold": t, "lesion_peak": h,
             "val_dice": float(np.mean(r["val_dice"])), "test_dice": float(np.mean(r["test_dice"])),
             "lesion_sensitivity": r["detected"] / r["gt_lesions"] if r["gt_lesions"] else float("nan"),
             "false_lesions": r["false_lesions"], "fp_ml_tumor_free": r["fp_ml_tumor_free"]}
            for (t, h), r in rows.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="model.pt files under .../seed-S[/round-R]/")
    parser.add_argument("--split", required=True,
                        help="the runs' split, with {seed} for the run seed (data/splits/labeled-F/seed-{seed}.json)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (its data/prepared)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--lesion-peaks", type=float, nargs="+", default=[],
                        help="also score each threshold keeping only components that peak at or above these")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prepared = args.results / "data" / "prepared"
    files = PreparedFiles(sorted(map(str, (prepared / "images").glob("case-*.npz"))),
                          sorted(map(str, (prepared / "labels").glob("case-*.npz"))))
    peaks = [None, *args.lesion_peaks]
    print("| model | threshold | lesion peak | val Dice | test Dice | lesion sensitivity | false lesions | FP mL tumor-free |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in args.models:
        match = re.search(r"seed-(\d+)", str(path))
        if not match:
            raise SystemExit(f"{path}: not under a seed-S folder, so its split is unknown")
        split = json.loads(Path(args.split.format(seed=match.group(1))).read_text())
        model, _ = load_model(path)
        rows = operating_points(model, [files.volume(c) for c in split["val"]],
                                [files.volume(c) for c in split["test"]], args.thresholds, peaks)
        for row in rows:
            peak = "-" if row["lesion_peak"] is None else f"{row['lesion_peak']:g}"
            print(f"| {path} | {row['threshold']:g} | {peak} | {row['val_dice']:.3f} | {row['test_dice']:.3f} | "
                  f"{row['lesion_sensitivity']:.3f} | {row['false_lesions']} | {row['fp_ml_tumor_free']:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
