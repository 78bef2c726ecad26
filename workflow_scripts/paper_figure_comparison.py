"""Rule paper_figure_comparison (reads test labels: evaluation only): each method's final model of the first
seed on test slices from small to large lesions, beside the ground truth."""

import numpy as np
import torch

from aslseg.gpus import default_device
from aslseg.io import atomic_path
from aslseg.paper.figures import choose_slices, comparison_figure
from aslseg.prepared import PreparedFiles
from aslseg.ssl.checkpoint import load_model
from aslseg.seg2d.network import predict_probabilities
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    volumes = {case_id: files.volume(case_id) for case_id in sorted(files.images)}
    chosen = choose_slices(list(volumes.values()), snakemake.params.slices)
    log.info("slices (case, index): %s", chosen)
    images = np.stack([volumes[case].image[index] for case, index in chosen])
    truths = [volumes[case].tumor[index].astype(bool) for case, index in chosen]
    regions = np.stack([volumes[case].liver[index] for case, index in chosen])
    predictions = {}
    for name, path, threshold in zip(snakemake.params.methods, snakemake.input.models, snakemake.params.thresholds):
        model, _ = load_model(path, default_device())
        predictions[name] = list(predict_probabilities(model, images, region=regions) > threshold)
    labels = [f"case {case}, slice {index}" for case, index in chosen]
    with atomic_path(snakemake.output[0]) as tmp:
        comparison_figure(list(images), truths, labels, predictions, tmp)
