"""Rule ssl_train: train SS(.) with the configured SSL method on one split; save the best-on-val weights."""

import json

import torch

from aslseg.prepared import PreparedFiles
from aslseg.ssl.checkpoint import save_checkpoint
from aslseg.ssl.network import default_device
from aslseg.ssl.slices import load_slices
from aslseg.ssl.settings import TrainSettings
from aslseg.ssl.train import train
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    ssl = snakemake.params.ssl
    split = json.loads(open(snakemake.input.split).read())
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    labeled = load_slices([files.image(c) for c in split["labeled"]], [files.label(c) for c in split["labeled"]])
    unlabeled = load_slices([files.image(c) for c in split["unlabeled"]]) if split["unlabeled"] else None
    val = [files.volume(c) for c in split["val"]]
    device = default_device()
    log.info("%s on %s: %d labeled, %d unlabeled slices, %d val volumes", ssl["method"], device, len(labeled),
             len(unlabeled) if unlabeled else 0, len(val))
    result = train(ssl["method"], labeled, unlabeled, val, TrainSettings.from_config(ssl),
                   seed=int(snakemake.wildcards.seed), device=device)
    log.info("best val Dice %.3f at iteration %d, %.0f s", result.best_val_dice, result.best_iteration, result.seconds)
    save_checkpoint(snakemake.output.model, result.state_dict, ssl, history=result.history,
                    best_iteration=result.best_iteration, best_val_dice=result.best_val_dice, seconds=result.seconds)
