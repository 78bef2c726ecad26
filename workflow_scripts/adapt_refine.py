"""Rule adapt_refine: Pseudo Label 3 = AN(image ⊕ PL2 [⊕ SAM probability ⊕ PL1]) for one shard."""

import numpy as np
import torch

from aslseg.adapt.train import AdaptData, load_adaptation, refine
from aslseg.gpus import default_device
from aslseg.io import write_npz
from aslseg.prepared import PreparedFiles
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    model, adapt, precision = load_adaptation(snakemake.input.model, default_device())
    log.info(precision.describe("AN(.)"))
    files = PreparedFiles(snakemake.input.images)
    arrays = {}
    with np.load(snakemake.input.pl2) as pl2, np.load(snakemake.input.pl1) as pl1:
        for case in sorted(files.images):
            with np.load(files.image(case)) as image:
                slices = image["image"].astype(np.float32)
            channels = {"pl2": pl2[f"mask_{case}"], "sam_probability": pl2[f"probability_{case}"], "pl1": pl1[f"mask_{case}"]}
            prior = np.stack([channels[name].astype(np.float32) for name in adapt["inputs"]], axis=1)
            mask, probability = refine(model, AdaptData(slices, prior), adapt["threshold"])
            arrays[f"mask_{case}"], arrays[f"probability_{case}"] = mask, probability.astype(np.float16)
            log.info("case %d: PL2 %d -> PL3 %d tumor pixels", case, channels["pl2"].sum(), mask.sum())
    write_npz(snakemake.output[0], **arrays)
