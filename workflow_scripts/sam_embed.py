"""Rule sam_embed: SAM image embeddings (fp16) of every slice of one shard of the train and val volumes."""

import numpy as np
import torch

from aslseg.prepared import case_id_of
from aslseg.sam.embeddings import write_shard
from aslseg.sam.model import load_configured_sam
from aslseg.ssl.network import default_device
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    sam = snakemake.params.sam
    model = load_configured_sam(sam, default_device())
    paths = sorted(snakemake.input.images, key=case_id_of)
    slices = {}
    for path in paths:
        with np.load(path) as prepared:
            slices[case_id_of(path)] = len(prepared["slice_index"])
    rows = [(case, position) for case, n in slices.items() for position in range(n)]

    def embeddings():
        for path in paths:
            with np.load(path) as prepared:
                image = prepared["image"].astype(np.float32)
            yield model.embed(image, bf16=sam["bf16"], batch_size=sam["embed_batch"]).numpy().astype(np.float16)
            log.info("case %d: %d slices embedded", case_id_of(path), len(image))

    write_shard(snakemake.output.embeddings, snakemake.output.index, rows, embeddings())
    # The run-wide count of encoder calls is the sum of these lines; it must equal the distinct slices embedded.
    log.info("encoder calls: %d for %d distinct slices of %d volumes", model.encoder_calls, len(set(rows)), len(paths))
