"""(Evaluation only: reads hidden tumor labels.) What limits the loop: the selection, or the pseudo labels?

From one round's selection folder, retrain the next round's SS(.) on several labeled lists and report each
model's test metrics:

- ``own_list``: this round's list, nothing added (with --warm-start: the round's own method trained on for as
  many more steps as a warm-started round gets, the baseline that such a round must beat);
- ``as_run``: the list the workflow built (this round's list plus every slice the selection accepted, and the
  negatives beside them with `select.negatives`);
- ``accepted_right``: the same, keeping only accepted slices whose final label is right (slice Dice with the
  hidden ground truth >= aslseg.metrics.CORRECT_SLICE_DICE): this selection without its mistakes;
- ``all_right``: this round's list plus every eligible slice (PL1 or the final label non-empty) whose final
  label is right: the best any selection could do with these pseudo labels;
- ``with_negatives``: ``as_run`` plus every unlabeled slice with liver where PL1 and the final label are both
  empty, as a tumor-free pseudo label (chosen without the truth): the accepted slices all carry tumor, so
  without them the pseudo part of every batch is tumor slices only;
- ``with_rejected``: ``with_negatives`` plus the liver slices where PL1 fires and SAM and AN reject all of it
  (the final label is empty): the negatives that sit where Stage I's own false positives are;
- ``negatives``: the list the workflow builds with ``select.negatives`` (aslseg/select/expand.py): the slices
  of ``with_rejected``, as source ``negative``, so the round trains in round 0's batch shape
  (ShapeKeepingBatchSampler; with --truth-share).

If ``accepted_right`` beats ``as_run``, wrong acceptances cost the loop; if even ``all_right`` barely beats the
round's own model, the pseudo labels are too few or too poor for any selection to help. Training settings
and seed are the round's own (its checkpoint and folder name), so ``as_run`` reproduces the workflow's next
round exactly on a CPU (with --truth-share and --warm-start as config `loop` sets them; by default 0.5 and off).
With --train-seeds N each variant is also trained with training seeds S + 1000, ..., S + 1000 (N - 1) on the
same list (as benchmarks/ssl_variants.py does for Stage I), so that a difference can be told from one
training's own variance, which is large for the false-positive counts.

    .venv/bin/python benchmarks/round_variants.py \\
        results/ssl/<run>/seed-0/sam-<M>/adapt-<A>/select-<Z> --split results/data/splits/labeled-0.1/seed-0.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from aslseg.metrics import summarize
from aslseg.prepared import PreparedFiles
from aslseg.pseudo_labels import shard_cases
from aslseg.select.expand import GROUND_TRUTH, PSEUDO, check_list, expand, tumor_free_slices
from aslseg.ssl.checkpoint import load_model
from aslseg.ssl.evaluation import score_volumes
from aslseg.seg2d.network import build_network
from aslseg.ssl.settings import TrainSettings
from aslseg.ssl.slices import load_round_slices
from aslseg.ssl.train import train
from selection_features import eligible_slices, slice_features

VARIANTS = ("own_list", "as_run", "accepted_right", "all_right", "with_negatives", "with_rejected", "negatives")


def final_label_files(select_dir: Path) -> dict[int, str]:
    """case -> the shard file holding its final pseudo label (PL3, else PL2, else PL1), as the score used."""
    adapt_dir, sam_dir = select_dir.parent, select_dir.parent.parent
    for folder in (adapt_dir / "pl3", sam_dir / "pl2", sam_dir.parent / "pl1"):
        shards = sorted(folder.glob("*.npz"))
        if shards:
            return {case: str(shard.resolve()) for shard in shards for case in shard_cases(shard)}
    raise FileNotFoundError(f"no pseudo-label shards beside {select_dir}")


def variant_lists(select_dir: Path, labels_dir: Path, round_index: int) -> tuple[dict[str, pd.DataFrame], set]:
    """The variants' labeled lists, and the (case, position) of every slice whose final label is right."""
    built = pd.read_csv(select_dir / "labeled_next_round.csv")
    check_list(built)
    this_round = built["round_accepted"] == round_index
    # the round's own list: without what this round added (accepted slices, and negatives if select.negatives)
    before = built[~this_round]
    slices = slice_features(select_dir, labels_dir).set_index(["case", "position"])
    files = final_label_files(select_dir)

    def with_slices(rows: pd.DataFrame) -> pd.DataFrame:
        added = pd.DataFrame({
            "case": rows["case"].to_numpy(), "position": rows["position"].to_numpy(), "source": PSEUDO,
            "round_accepted": round_index, "score": rows["score"].to_numpy(),
            "label_file": [files[int(c)] for c in rows["case"]],
        })
        table = pd.concat([before, added], ignore_index=True).sort_values(["case", "position"], ignore_index=True)
        check_list(table)
        return table

    accepted = built[this_round & (built["source"] == PSEUDO)]
    right = slices["right"]
    # a boolean array, not a list: an empty list would select columns when the round accepted nothing
    accepted_right = accepted[np.array([bool(right[(c, p)]) for c, p in zip(accepted["case"], accepted["position"])],
                                       dtype=bool)]
    table = slices.reset_index()
    eligible = eligible_slices(table)
    images = labels_dir.parent / "images"
    livers = {case: np.load(images / f"case-{case}.npz")["liver"].any(axis=(1, 2)) for case in table.case.unique()}
    in_liver = table[[bool(livers[c][p]) for c, p in zip(table.case, table.position)]]
    negatives = in_liver.drop(eligible.index, errors="ignore")  # PL1 and the final label both empty
    rejected = in_liver[in_liver.final_pixels == 0]  # the final label empty, PL1 empty or not
    # the selection may have accepted some of those already (an empty final label can score high)
    scores = pd.read_csv(select_dir / "scores.csv")
    taken = set(zip(accepted["case"], accepted["position"]))
    negatives, rejected = (
        frame[np.array([(c, p) not in taken for c, p in zip(frame.case, frame.position)], dtype=bool)]
        for frame in (negatives, rejected))
    lists = {
        "own_list": with_slices(accepted.iloc[0:0]),
        "as_run": built,  # exactly what the workflow trains next (with its negatives, if any)
        "accepted_right": with_slices(accepted_right),
        "all_right": with_slices(eligible[eligible["right"]]),
        "with_negatives": with_slices(pd.concat([accepted, negatives[["case", "position", "score"]]], ignore_index=True)),
        "with_rejected": with_slices(pd.concat([accepted, rejected[["case", "position", "score"]]], ignore_index=True)),
        "negatives": expand(before, scores, round_index, files, set(), negatives=tumor_free_slices(scores, livers)),
    }
    return lists, set(right[right].index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("select_dir", type=Path)
    parser.add_argument("--split", type=Path, required=True, help="the run's split (data/splits/labeled-F/seed-S.json)")
    parser.add_argument("--results", type=Path, default=None, help="results folder (default: above select_dir)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-seeds", type=int, default=1, metavar="N",
                        help="trainings per variant: the run's seed S and S + 1000, ..., S + 1000 (N - 1)")
    parser.add_argument("--truth-share", type=float, default=None,
                        help="loop.truth_share of the retrained round (default: one pool, as before it existed)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="optimizer steps of each training (default: the round's own ssl.iterations)")
    parser.add_argument("--warm-start", action="store_true",
                        help="start each training from the round's own model (loop.warm_start; default: from scratch)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    select_dir = args.select_dir.resolve()
    results = args.results or next(p for p in select_dir.parents if (p / "data").is_dir())
    model_dir = select_dir.parent.parent.parent
    match = re.search(r"seed-(\d+)(?:/round-(\d+))?$", str(model_dir))
    if not match:
        raise SystemExit(f"{select_dir}: not under .../seed-S or .../seed-S/round-R")
    seed, round_index = int(match.group(1)), int(match.group(2) or 0)
    own_model, checkpoint = load_model(model_dir / "model.pt")
    ssl = checkpoint["ssl"]
    split = json.loads(args.split.read_text())
    prepared = results / "data" / "prepared"
    files = PreparedFiles(sorted(map(str, (prepared / "images").glob("case-*.npz"))),
                          sorted(map(str, (prepared / "labels").glob("case-*.npz"))))
    val = [files.volume(c) for c in split["val"]]
    test = [files.volume(c) for c in split["test"]]
    images = [files.image(c) for c in split["labeled"] + split["unlabeled"]]
    own = summarize(pd.DataFrame(score_volumes(own_model, test, ssl["threshold"])))
    print(f"seed {seed}, round {round_index} -> {round_index + 1}, {ssl['method']}, {ssl['iterations']} iterations; "
          f"round {round_index}'s own model: test Dice {own['dice_mean']:.3f}, best val Dice {checkpoint['best_val_dice']:.3f}")
    lists, right_slices = variant_lists(select_dir, prepared / "labels", round_index)
    settings = TrainSettings.from_config({**ssl, **({"iterations": args.iterations} if args.iterations else {})})
    print("| variant | training seed | pseudo slices | right | best val Dice | test Dice | lesion precision | FP lesions "
          "| FP mL tumor-free |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.variants:
        labeled_list = lists[name]
        labeled, unlabeled = load_round_slices(labeled_list, images, split["unlabeled"])
        pseudo = labeled_list[labeled_list["source"] != GROUND_TRUTH]
        pseudo = pseudo[pseudo["round_accepted"] == round_index]
        right = sum((c, p) in right_slices for c, p in zip(pseudo["case"], pseudo["position"]))
        for train_seed in (seed + 1000 * k for k in range(args.train_seeds)):
            result = train(ssl["method"], labeled, unlabeled, val, settings, seed=train_seed,
                           progress=False, truth_share=args.truth_share,
                           start_from=own_model.state_dict() if args.warm_start else None)
            model = build_network(ssl["features"], bf16=result.precision.bf16)
            model.load_state_dict(result.state_dict)
            summary = summarize(pd.DataFrame(score_volumes(model, test, ssl["threshold"])))
            cells = [name, train_seed, len(pseudo), right, f"{result.best_val_dice:.3f}", f"{summary['dice_mean']:.3f}",
                     "-" if summary["lesion_precision"] is None else f"{summary['lesion_precision']:.3f}",
                     summary["pred_lesions"] - summary["true_pred_lesions"], f"{summary['fp_volume_ml_tumor_free']:.1f}"]
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
