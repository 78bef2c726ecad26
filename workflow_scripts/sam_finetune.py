"""Rule sam_finetune: fine-tune SAM's mask decoder on the labeled volumes' tumors from cached embeddings, and
report zero-shot vs fine-tuned Dice on the val volumes with prompts made from their ground truth."""

import json

import numpy as np
import torch

from aslseg.gpus import default_device
from aslseg.io import atomic_path, write_json
from aslseg.prepared import PreparedFiles
from aslseg.sam.embeddings import EmbeddingStore
from aslseg.sam.finetune import FinetuneSettings, finetune, prompt_dice
from aslseg.sam.model import load_configured_sam
from aslseg.sam.prompts import PROMPT_TYPES, PromptShape
from aslseg.workflow import job_logging


def tumor_slices(store: EmbeddingStore, files: PreparedFiles, cases: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and tumor masks of the slices of `cases` that hold tumor (the only ones with examples)."""
    keys, masks = [], []
    for case in cases:
        with np.load(files.label(case)) as label:
            tumor = label["tumor"]
        for position in np.flatnonzero(tumor.reshape(len(tumor), -1).any(axis=1)):
            keys.append((case, int(position)))
            masks.append(tumor[position])
    size = masks[0].shape if masks else (0, 0)
    return store.get(keys), np.asarray(masks, dtype=np.uint8).reshape(len(keys), *size)


with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    sam = snakemake.params.sam
    tuning = {key: value for key, value in sam["finetune"].items() if key != "enabled"}
    shape = PromptShape.from_config(sam)
    settings = FinetuneSettings.from_config(tuning, shape)
    split = json.loads(open(snakemake.input.split).read())
    store = EmbeddingStore(snakemake.input.embeddings)
    files = PreparedFiles([], snakemake.input.labels)
    train_embeddings, train_masks = tumor_slices(store, files, split["labeled"])
    val_embeddings, val_masks = tumor_slices(store, files, split["val"])
    log.info("%d labeled and %d val slices with tumor", len(train_masks), len(val_masks))
    model = load_configured_sam(sam, default_device())
    log.info(model.precision.describe("SAM's decoder"))

    def val_dice() -> dict:
        return {
            prompt: prompt_dice(model, val_embeddings, val_masks, prompt, shape)
            for prompt in PROMPT_TYPES
        }

    zero_shot = val_dice()
    result = finetune(model, train_embeddings, train_masks, settings, seed=int(snakemake.wildcards.seed))
    model.load_decoder_state(result.decoder_state)
    fine_tuned = val_dice()
    for prompt in PROMPT_TYPES:
        log.info("val Dice with %s prompts: zero-shot %s, fine-tuned %s", prompt, zero_shot[prompt], fine_tuned[prompt])
    with atomic_path(snakemake.output.decoder) as tmp:
        torch.save({"decoder_state": result.decoder_state, "sam": sam, "history": result.history,
                    "seconds": result.seconds, "precision": model.precision.record()}, tmp)
    write_json(snakemake.output.report, {
        "zero_shot": zero_shot,
        "fine_tuned": fine_tuned,
        "labeled_tumor_slices": len(train_masks),
        "val_tumor_slices": len(val_masks),
        "finetune_s": result.seconds,
    })
