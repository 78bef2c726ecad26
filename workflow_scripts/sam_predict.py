"""Rule sam_predict: Pseudo Label 2 of one shard from its prompts and the cached embeddings."""

import json

import pandas as pd
import torch

from aslseg.io import atomic_path, write_npz
from aslseg.sam.embeddings import EmbeddingStore
from aslseg.sam.model import load_sam
from aslseg.sam.predict import flatten_prompts, predict_pseudo_label_2
from aslseg.ssl.network import default_device
from aslseg.workflow import job_logging

COLUMNS = ["case", "position", "component", "pl1_area", "pl2_area", "predicted_iou"]

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    sam = snakemake.params.sam
    model = load_sam(sam["backend"], sam["model_type"], sam["checkpoint"], device=default_device())
    if "decoder" in snakemake.input.keys():
        model.load_decoder_state(torch.load(snakemake.input.decoder, map_location="cpu", weights_only=True)["decoder_state"])
    else:
        log.info("SAM zero-shot (sam.finetune.enabled is false)")
    artifact = json.loads(open(snakemake.input.prompts).read())
    shapes = {int(case): tuple(shape) for case, shape in artifact["cases"].items()}
    masks, rows = predict_pseudo_label_2(model, EmbeddingStore(snakemake.input.embeddings),
                                         flatten_prompts(artifact), shapes, sam["threshold"])
    write_npz(snakemake.output.masks, **{f"mask_{case}": mask for case, mask in masks.items()})
    with atomic_path(snakemake.output.components) as tmp:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False, float_format="%.4g")
    log.info("%d prompts decoded for %d cases", len(rows), len(shapes))
