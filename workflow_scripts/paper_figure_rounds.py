"""Rule paper_figure_rounds: the paper's loop experiments round by round."""

import pandas as pd

from aslseg.io import atomic_path
from aslseg.paper.figures import rounds_figure
from aslseg.workflow import job_logging

with job_logging(snakemake):
    runs = pd.read_csv(snakemake.input.runs)
    pseudo_labels = pd.read_csv(snakemake.input.pseudo_labels)
    with atomic_path(snakemake.output[0]) as tmp:
        rounds_figure(runs, pseudo_labels, snakemake.params.experiments, tmp)
