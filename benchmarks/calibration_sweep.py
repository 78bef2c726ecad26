"""(Evaluation only: reads the unlabeled volumes' hidden tumor labels.) How precise is round 0's calibrated
selection on the unlabeled slices, for several `select.precision_confidence` and `select.precision` values and
score weights?

For each seed, scores round 0's pseudo labels (agreement of PL1 and the final label, SAM's predicted IoU, the
final label's confidence, weighted by --weights) on the unlabeled and the val volumes as rule `score` does,
calibrates the threshold on the val slices at each confidence and precision, and reports how many unlabeled
slices it accepts and how many of those are right (slice Dice >= 0.5 with the hidden truth).

    .venv/bin/python benchmarks/calibration_sweep.py results/ssl/bcp-590b5e4de8 \\
        --sam box-a579728ebb --adapt 7010544099 --seeds 0 1 2 --confidence 0.5 0.7 0.8 0.9 0.95 --weights 1 0 0
    .venv/bin/python benchmarks/calibration_sweep.py results/ssl/bcp-590b5e4de8 \\
        --sam box-a579728ebb --adapt 7010544099 --seeds 0 1 2 --confidence 0.9 --precision 0.5 0.6 0.7
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aslseg.config import default_config
from aslseg.select.reliability import SelectSettings, calibrate_threshold, select
from aslseg.select.scoring import score_shards, val_right


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path, help="results/ssl/<method>-<hash>")
    parser.add_argument("--sam", required=True, help="the SAM run folder name without 'sam-'")
    parser.add_argument("--adapt", required=True, help="the AN run folder name without 'adapt-'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--confidence", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--precision", type=float, nargs="+", default=[0.5])
    default = default_config()["select"]
    parser.add_argument("--weights", type=float, nargs=3, metavar=("AGREEMENT", "SAM_IOU", "CONFIDENCE"),
                        default=[default["agreement_weight"], default["sam_iou_weight"], default["confidence_weight"]],
                        help="the score's weights (default: the config's)")
    parser.add_argument("--min-val-slices", type=int, default=5)
    parser.add_argument("--labels", type=Path, default=Path("results/data/prepared/labels"))
    args = parser.parse_args()
    agreement, sam_iou, confidence = args.weights
    settings = SelectSettings(rule="calibrated", accept_empty=False, agreement_weight=agreement, sam_iou_weight=sam_iou,
                              confidence_weight=confidence, precision=args.precision[0], precision_confidence=0.5,
                              min_val_slices=args.min_val_slices)
    print(f"score weights: agreement {agreement}, SAM IoU {sam_iou}, confidence {confidence}\n")
    print("| seed | target | confidence | val accepted (right) | unlabeled accepted (right) | precision |")
    print("| --- | --- | --- | --- | --- | --- |")
    for seed in args.seeds:
        model = args.run / f"seed-{seed}"
        sam = model / f"sam-{args.sam}"
        final = sam / f"adapt-{args.adapt}" / "pl3"
        scored = {}
        for shard in ("0", "val"):
            scores, labels = score_shards([str(model / f"pl1/shard-{shard}.npz")], [str(final / f"shard-{shard}.npz")],
                                          [str(sam / f"pl2/shard-{shard}.csv")], settings)
            scored[shard] = (scores, val_right(scores, labels, [str(args.labels / f"case-{c}.npz") for c in sorted(labels)]))
        (unlabeled, unlabeled_right), (val, val_ok) = scored["0"], scored["val"]
        for target in args.precision:
            for confidence in args.confidence:
                found = calibrate_threshold(val, val_ok, target, args.min_val_slices, False, confidence)
                accepted = select(unlabeled, "calibrated", found["threshold"], None, False)["accepted"].to_numpy()
                right = int(unlabeled_right[accepted].sum())
                precision = f"{right / accepted.sum():.2f}" if accepted.any() else "-"
                print(f"| {seed} | {target} | {confidence} | {found['val_accepted']} ({found['val_accepted_right']}) | "
                      f"{int(accepted.sum())} ({right}) | {precision} |")


if __name__ == "__main__":
    main()
