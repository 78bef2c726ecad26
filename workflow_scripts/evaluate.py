"""Rule evaluate (reads test labels: evaluation only): SS(.) on every test volume, metrics per case in 3D in
mm, and their summary."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import pandas as pd
import torch

from aslseg.gpus import default_device
from aslseg.io import atomic_path, write_json
from aslseg.metrics import summarize
from aslseg.prepared import PreparedFiles
from aslseg.ssl.checkpoint import load_model
from aslseg.ssl.evaluation import score_volumes

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    model, checkpoint = load_model(snakemake.input.model, default_device())
    log.info(checkpoint["inference_precision"].describe("SS(.)"))
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    volumes = [files.volume(case_id) for case_id in sorted(files.images)]
    table = pd.DataFrame(score_volumes(model, volumes, snakemake.params.threshold))
    log.info("\n%s", table[["case_id", "dice", "hd95_mm", "gt_lesions", "detected_lesions", "pred_lesions"]])
    with atomic_path(snakemake.output.cases) as tmp:
        table.to_csv(tmp, index=False, float_format="%.5g")
    summary = {**summarize(table), "best_val_dice": checkpoint["best_val_dice"], "train_s": checkpoint["seconds"]}
    write_json(snakemake.output.summary, summary)
