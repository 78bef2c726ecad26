"""Rule liver_train: the liver model on the labeled volumes' whole slices, best weights on the val volumes."""

from pathlib import Path

import torch

from aslseg.data.lits import CaseFiles, load_case
from aslseg.gpus import default_device
from aslseg.liver import LiverData, LiverSettings, save_liver_model, train_liver
from aslseg.workflow import job_logging


def volumes(group: str) -> list[tuple]:
    """(HU, labels) of the input volumes of `group` (labeled or val), display order."""
    pairs = zip(snakemake.input[f"{group}_volume"], snakemake.input[f"{group}_segmentation"])
    cases = [load_case(CaseFiles(index, Path(volume), Path(segmentation))) for index, (volume, segmentation) in enumerate(pairs)]
    return [(case.hu, case.labels) for case in cases]


with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    settings = LiverSettings.from_config(snakemake.params.liver, snakemake.params.window)
    train, val = LiverData.from_volumes(volumes("labeled"), settings), LiverData.from_volumes(volumes("val"), settings)
    log.info("liver model: %d training slices, %d val slices at %d px", len(train.image), len(val.image), settings.size)
    result = train_liver(train, val, settings, seed=int(snakemake.wildcards.seed), device=default_device())
    log.info(result.precision.describe("liver"))
    log.info("best val Dice %.3f at iteration %d, %.0f s", result.best_val_dice, result.best_iteration, result.seconds)
    save_liver_model(snakemake.output.model, result, settings)
