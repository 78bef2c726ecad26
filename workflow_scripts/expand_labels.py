"""Rule expand_labels: the next round's labeled list = this round's list (round 0: the labeled volumes'
ground-truth slices) + the newly accepted pseudo-labeled slices (the final pseudo label as label), and with
select.negatives the tumor-free liver slices beside them."""

import json

import numpy as np
import pandas as pd

from aslseg.io import atomic_path
from aslseg.prepared import case_id_of
from aslseg.pseudo_labels import shard_cases
from aslseg.select.expand import expand, initial_list, summarize_list, tumor_free_slices
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    split = json.loads(open(snakemake.input.split).read())
    if "labeled_list" in snakemake.input.keys():
        previous = pd.read_csv(snakemake.input.labeled_list)
    else:
        slices = {}
        for path in snakemake.input.labeled_images:
            with np.load(path) as image:
                slices[case_id_of(path)] = len(image["image"])
        label_files = {int(case): path for case, path in snakemake.params.label_files.items()}
        previous = initial_list(slices, label_files)
    pl3_file = {case: str(path) for path in snakemake.input.pl3 for case in shard_cases(path)}
    scores = pd.read_csv(snakemake.input.scores)
    negatives = None
    if snakemake.params.negatives:
        livers = {}
        for path in snakemake.input.unlabeled_images:
            with np.load(path) as image:
                livers[case_id_of(path)] = image["liver"].reshape(len(image["liver"]), -1).any(axis=1)
        negatives = tumor_free_slices(scores, livers)
    expanded = expand(previous, scores, round_index=int(snakemake.params.round), pl3_file_of_case=pl3_file,
                      forbidden_cases=set(split["test"]) | set(split["val"]), negatives=negatives)
    with atomic_path(snakemake.output[0]) as tmp:
        expanded.to_csv(tmp, index=False)
    log.info("%s", summarize_list(expanded))
