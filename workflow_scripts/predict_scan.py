"""Rule predict_scan: one new scan -> <name>_seg.nii.gz in its own grid and <name>_seg.json (aslseg.predict)."""

from pathlib import Path

import torch

from aslseg.gpus import default_device
from aslseg.predict import Predictor, segment_file
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    predictor = Predictor.load(snakemake.params.model_dir, default_device())
    log.info("%s; %s", predictor.tumor_precision, predictor.liver.precision.describe("liver"))
    segment_file(predictor, snakemake.input.scan, Path(snakemake.output.seg).parent, snakemake.params.model_dir,
                 snakemake.params.liver_dir, "probability" in snakemake.output.keys(), dict(snakemake.params.request))
