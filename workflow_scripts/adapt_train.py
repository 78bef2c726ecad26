"""Rule adapt_train: AN(.) on the labeled volumes' synthetic pseudo-labels, best weights on the val ones."""

import json

import numpy as np
import torch

from aslseg.adapt.train import AdaptData, AdaptSettings, train_adaptation
from aslseg.gpus import default_device
from aslseg.io import atomic_path, write_json
from aslseg.prepared import PreparedFiles
from aslseg.workflow import job_logging


def examples(synthetic, part: str, files: PreparedFiles, inputs: tuple[str, ...]) -> AdaptData:
    """AN's inputs and targets for the synthetic examples of `part` (train or val)."""
    images, tumors = {}, {}
    for case in np.unique(synthetic[f"{part}_case"]):
        with np.load(files.image(int(case))) as image, np.load(files.label(int(case))) as label:
            images[int(case)], tumors[int(case)] = image["image"].astype(np.float32), label["tumor"]
    pairs = list(zip(synthetic[f"{part}_case"].tolist(), synthetic[f"{part}_position"].tolist()))
    channels = {"pl2": synthetic[f"{part}_pl2"], "sam_probability": synthetic[f"{part}_sam_probability"],
                "pl1": synthetic[f"{part}_pl1"]}
    return AdaptData(
        image=np.stack([images[c][p] for c, p in pairs]),
        prior=np.stack([channels[name].astype(np.float32) for name in inputs], axis=1),
        target=np.stack([tumors[c][p] for c, p in pairs]),
    )


with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    settings = AdaptSettings.from_config(snakemake.params.adapt)
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    with np.load(snakemake.input.synthetic) as synthetic:
        train, val = (examples(synthetic, part, files, settings.inputs) for part in ("train", "val"))
    log.info("%d training and %d val examples", len(train.image), len(val.image))
    result = train_adaptation(train, val, settings, seed=int(snakemake.wildcards.seed), device=default_device())
    log.info(result.precision.describe("AN(.)"))
    log.info("val Dice: synthetic PL2 %.3f -> AN %.3f (iteration %d), %.0f s", result.val_dice_of_pl2,
             result.best_val_dice, result.best_iteration, result.seconds)
    with atomic_path(snakemake.output.model) as tmp:
        torch.save({"state_dict": result.state_dict, "adapt": snakemake.params.adapt, "history": result.history,
                    "precision": result.precision.record()}, tmp)
    write_json(snakemake.output.report, {
        "val_dice_pl2": result.val_dice_of_pl2,
        "val_dice_an": result.best_val_dice,
        "best_iteration": result.best_iteration,
        "train_examples": len(train.image),
        "val_examples": len(val.image),
        "train_s": result.seconds,
        "bf16": result.precision.bf16,
    })
