"""Rule ssl_predict: Pseudo Label 1 (tumor probability and mask) for the unlabeled slices of one shard."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import numpy as np
import torch

from aslseg.gpus import default_device
from aslseg.prepared import PreparedFiles
from aslseg.pseudo_labels import write_shard
from aslseg.ssl.checkpoint import load_model
from aslseg.seg2d.network import predict_probabilities

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    model, checkpoint = load_model(snakemake.input.model, default_device())
    log.info(checkpoint["inference_precision"].describe("SS(.)"))
    threshold = snakemake.params.threshold
    files = PreparedFiles(snakemake.input.images)
    masks, probabilities = {}, {}
    for case_id in sorted(files.images):
        with np.load(files.image(case_id)) as image:
            probability = predict_probabilities(model, image["image"].astype(np.float32), region=image["liver"])
        probabilities[case_id] = probability
        masks[case_id] = (probability > threshold).astype(np.uint8)
        log.info("case %d: %d slices, %d tumor pixels", case_id, len(probability), masks[case_id].sum())
    write_shard(snakemake.output[0], masks, probabilities)
