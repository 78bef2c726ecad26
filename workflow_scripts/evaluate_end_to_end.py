"""Rule evaluate_end_to_end (reads the test volumes' segmentations: evaluation only): every test volume
segmented from its CT alone through aslseg.predict, as a new scan is, and scored in its own grid."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

from pathlib import Path

import pandas as pd
import torch

from aslseg.data.scans import load_scan
from aslseg.gpus import default_device
from aslseg.io import atomic_path, write_json
from aslseg.metrics import case_metrics, summarize, volume_dice
from aslseg.predict import TUMOR, Predictor

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    predictor = Predictor.load(Path(snakemake.input.predictor).parent, default_device())
    log.info("%s; %s", predictor.tumor_precision, predictor.liver.precision.describe("liver"))
    rows = []
    for volume, segmentation in zip(snakemake.input.volumes, snakemake.input.segmentations):
        scan = load_scan(volume)
        result = predictor.segment(scan.hu, scan.spacing)  # the CT only: no label reaches the prediction
        truth = scan.read_on_grid(segmentation)  # checked like every LiTS file: same shape and affine
        rows.append({"scan": scan.name, "liver_dice": volume_dice(result.labels > 0, truth > 0),
                     **case_metrics(result.labels == TUMOR, truth == TUMOR, scan.spacing)})
        log.info("%s: liver Dice %.3f, tumor Dice %.3f", scan.name, rows[-1]["liver_dice"], rows[-1]["dice"])
    table = pd.DataFrame(rows)
    with atomic_path(snakemake.output.cases) as tmp:
        table.to_csv(tmp, index=False, float_format="%.5g")
    write_json(snakemake.output.summary, {**summarize(table), "liver_dice_mean": float(table["liver_dice"].mean())})
