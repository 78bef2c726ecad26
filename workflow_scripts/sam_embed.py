"""Rule sam_embed: SAM image embeddings (fp16) of the liver slices of one shard of the train and val volumes."""

import numpy as np
import torch

from aslseg.gpus import default_device
from aslseg.prepared import case_id_of
from aslseg.progress import Progress
from aslseg.sam.embeddings import embedded_positions, write_shard
from aslseg.sam.model import load_configured_sam
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    sam = snakemake.params.sam
    model = load_configured_sam(sam, default_device())
    log.info(model.precision.describe("SAM's image encoder"))
    paths = sorted(snakemake.input.images, key=case_id_of)
    positions = {}
    for path in paths:
        with np.load(path) as prepared:
            positions[case_id_of(path)] = embedded_positions(prepared["liver"])
    rows = [(case, int(position)) for case, kept in positions.items() for position in kept]
    log.info(model.compile_encoder(len(rows), model.precision.bf16))
    progress = Progress(len(rows), f"sam_embed shard {snakemake.wildcards.shard}", "slices")

    def embeddings():
        for path in paths:
            case = case_id_of(path)
            with np.load(path) as prepared:
                whole = prepared["image"]
            image = whole[positions[case]].astype(np.float32)
            n_slices = len(whole)
            if len(image):
                yield model.embed(image, bf16=model.precision.bf16, batch_size=sam["embed_batch"]).numpy().astype(np.float16)
                progress.advance(len(image))
            log.info("case %d: %d of %d slices embedded (the others hold no liver)", case, len(image), n_slices)

    write_shard(snakemake.output.embeddings, snakemake.output.index, rows, embeddings(),
                precision=model.precision.record())
    # The run-wide count of encoder calls is the sum of these lines; it must equal the distinct slices embedded.
    log.info("encoder calls: %d for %d distinct slices of %d volumes", model.encoder_calls, len(set(rows)), len(paths))
