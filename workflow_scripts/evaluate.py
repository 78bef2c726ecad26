"""Rule evaluate (reads test labels: evaluation only): SS(.) on every test volume, metrics per case in 3D in
mm, and their summary."""

import numpy as np
import pandas as pd
import torch

from aslseg.io import atomic_path, write_json
from aslseg.metrics import case_metrics, summarize
from aslseg.prepared import PreparedFiles
from aslseg.ssl.checkpoint import load_model
from aslseg.ssl.network import default_device, predict_probabilities
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    model, checkpoint = load_model(snakemake.input.model, default_device())
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    rows = []
    for case_id in sorted(files.images):
        image, tumor, spacing = files.volume(case_id)
        prediction = predict_probabilities(model, image) > snakemake.params.threshold
        rows.append({"case_id": case_id, **case_metrics(prediction, tumor, spacing)})
        log.info("case %d: dice %.3f", case_id, rows[-1]["dice"])
    table = pd.DataFrame(rows)
    with atomic_path(snakemake.output.cases) as tmp:
        table.to_csv(tmp, index=False, float_format="%.5g")
    summary = {**summarize(table), "best_val_dice": checkpoint["best_val_dice"], "train_s": checkpoint["seconds"]}
    write_json(snakemake.output.summary, summary)
