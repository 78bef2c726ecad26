"""Rule sam_predict: Pseudo Label 2 of one shard from its prompts and the cached embeddings."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import json

import pandas as pd
import torch

from aslseg.gpus import default_device
from aslseg.io import atomic_path
from aslseg.pseudo_labels import write_shard
from aslseg.sam.embeddings import EmbeddingStore
from aslseg.sam.model import load_configured_sam
from aslseg.sam.predict import pseudo_label_2

COLUMNS = ["case", "position", "component", "input_area", "sam_area", "predicted_iou"]

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    sam = snakemake.params.sam
    decoder = snakemake.input.decoder if "decoder" in snakemake.input.keys() else None
    model = load_configured_sam(sam, default_device(), decoder)
    log.info(model.precision.describe("SAM's decoder"))
    if decoder is None:
        log.info("SAM zero-shot (sam.finetune.enabled is false)")
    artifact = json.loads(open(snakemake.input.prompts).read())
    masks, probability, rows = pseudo_label_2(model, EmbeddingStore(snakemake.input.embeddings), artifact,
                                              sam["threshold"])
    write_shard(snakemake.output.masks, masks, probability)
    with atomic_path(snakemake.output.components) as tmp:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False, float_format="%.4g")
    log.info("%d prompts decoded for %d cases", len(rows), len(masks))
