"""Rule adapt_refine: Pseudo Label 3 = AN(image ⊕ PL2 [⊕ SAM probability ⊕ PL1]) for one shard."""

import numpy as np
import torch

from aslseg.adapt.train import AdaptData, load_adaptation, refine
from aslseg.gpus import default_device
from aslseg.prepared import PreparedFiles
from aslseg.pseudo_labels import read_masks, read_probabilities, write_shard
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    model, adapt, precision = load_adaptation(snakemake.input.model, default_device())
    log.info(precision.describe("AN(.)"))
    files = PreparedFiles(snakemake.input.images)
    pl1, pl2 = read_masks([snakemake.input.pl1]), read_masks([snakemake.input.pl2])
    sam_probability = read_probabilities([snakemake.input.pl2])
    masks, probabilities = {}, {}
    for case in sorted(files.images):
        with np.load(files.image(case)) as image:
            slices = image["image"].astype(np.float32)
        channels = {"pl2": pl2[case], "sam_probability": sam_probability[case], "pl1": pl1[case]}
        prior = np.stack([channels[name].astype(np.float32) for name in adapt["inputs"]], axis=1)
        masks[case], probabilities[case] = refine(model, AdaptData(slices, prior), adapt["threshold"])
        log.info("case %d: PL2 %d -> PL3 %d tumor pixels", case, channels["pl2"].sum(), masks[case].sum())
    write_shard(snakemake.output[0], masks, probabilities)
