"""Rule ssl_train: train SS(.) with the configured SSL method on one round's labeled slices; save the
best-on-val weights."""

import json
import shutil

import pandas as pd

from aslseg.io import atomic_path
from aslseg.select.expand import NEGATIVE, PSEUDO, accepted_in
from aslseg.workflow import job_logging


def reuse_previous_round(log) -> bool:
    """Round >= 1 whose list the previous round's selection left unchanged: nothing new to learn from (from
    scratch its training would come out the same as the previous round's; warm-started it would only add
    steps that the baselines do not get); the previous model is copied instead."""
    if "previous_model" not in snakemake.input.keys():
        return False
    round_index = int(snakemake.params.round)
    if accepted_in(pd.read_csv(snakemake.input.labeled_list), round_index - 1):
        return False
    log.info("round %d's selection accepted nothing: round %d would repeat round %d's training, whose model is reused",
             round_index - 1, round_index, round_index - 1)
    with atomic_path(snakemake.output.model) as tmp:
        shutil.copyfile(snakemake.input.previous_model, tmp)
    return True


def train_round(log) -> None:
    # Imported here: a round that reuses the previous model never loads torch and MONAI (seconds per job).
    import torch

    from aslseg.gpus import default_device
    from aslseg.prepared import PreparedFiles
    from aslseg.ssl.checkpoint import load_weights, save_checkpoint
    from aslseg.ssl.methods import METHODS
    from aslseg.ssl.settings import TrainSettings
    from aslseg.ssl.slices import load_round_slices, load_slices
    from aslseg.ssl.train import train

    torch.set_num_threads(snakemake.threads)
    ssl = snakemake.params.ssl
    split = json.loads(open(snakemake.input.split).read())
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    if "labeled_list" in snakemake.input.keys():  # round >= 1: ground truth + accepted pseudo labels
        labeled_list = pd.read_csv(snakemake.input.labeled_list, keep_default_na=True)
        labeled, unlabeled = load_round_slices(labeled_list, [files.image(c) for c in split["labeled"] + split["unlabeled"]],
                                               split["unlabeled"])
        n_pseudo = int((labeled_list["source"] == PSEUDO).sum())
        n_negative = int((labeled_list["source"] == NEGATIVE).sum())
        if unlabeled is None and METHODS[ssl["method"]].uses_unlabeled and split["unlabeled"]:
            # Every slice was accepted: the SSL loss still sees the unlabeled volumes' images (their labels
            # train through the list), rather than the method failing for want of unlabeled data.
            log.warning("no slice of the unlabeled volumes is left unlabeled; %s's unlabeled loss uses all of them",
                        ssl["method"])
            unlabeled = load_slices([files.image(c) for c in split["unlabeled"]])
    else:  # round 0: the split's labeled volumes
        labeled = load_slices([files.image(c) for c in split["labeled"]], [files.label(c) for c in split["labeled"]])
        unlabeled = load_slices([files.image(c) for c in split["unlabeled"]]) if split["unlabeled"] else None
        n_pseudo = n_negative = 0
    val = [files.volume(c) for c in split["val"]]
    truth_share = snakemake.params.loop.get("truth_share")
    if n_pseudo:
        log.info("labeled batches: %s", "one pool of ground truth and pseudo labels" if truth_share is None
                 else f"at least a share of {truth_share:g} from the ground truth, the rest pseudo-labeled"
                 + (" (in round 0's shape: accepted slices in tumor slots, negatives in the others)" if n_negative
                    else ""))
    device = default_device()
    log.info("%s on %s: %d labeled slices (%d pseudo-labeled%s), %d unlabeled slices, %d val volumes", ssl["method"],
             device, len(labeled), n_pseudo, f", {n_negative} negatives" if n_negative else "",
             len(unlabeled) if unlabeled else 0, len(val))
    start_from = None
    if snakemake.params.loop.get("warm_start"):
        start_from = load_weights(snakemake.input.previous_model)
        log.info("warm start: training begins from round %d's model", int(snakemake.params.round) - 1)
    # Every round of a run trains from the run's seed: rounds differ by their labeled list (and start) alone.
    result = train(ssl["method"], labeled, unlabeled, val, TrainSettings.from_config(ssl),
                   seed=int(snakemake.params.seed), device=device, truth_share=truth_share, start_from=start_from)
    log.info(result.precision.describe("SS(.)"))
    log.info("best val Dice %.3f at iteration %d, %.0f s", result.best_val_dice, result.best_iteration, result.seconds)
    save_checkpoint(snakemake.output.model, result.state_dict, ssl, precision=result.precision.record(),
                    history=result.history,
                    best_iteration=result.best_iteration, best_val_dice=result.best_val_dice, seconds=result.seconds)


with job_logging(snakemake) as log:
    if not reuse_previous_round(log):
        train_round(log)
