"""Rule paper_tables: Table 1 (methods) and Table 2 (ablation) from the paper runs' test summaries."""

import json

import pandas as pd

from aslseg.io import atomic_path
from aslseg.paper.tables import (ABLATION_COLUMNS, METHODS_COLUMNS, paired_dice_test, paper_table, to_markdown,
                                 with_volume_counts)
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    runs = pd.read_csv(snakemake.input.runs)
    descriptions = {
        name: with_volume_counts(snakemake.params.descriptions[name], json.loads(open(split).read()))
        for name, split in zip(snakemake.params.experiments, snakemake.input.splits)
    }
    cases = pd.concat([pd.read_csv(path).assign(experiment=experiment, seed=seed)
                       for (experiment, seed), path in zip(snakemake.params.cases, snakemake.input.cases)])
    paired = paired_dice_test(cases, snakemake.params.reference)
    for names, columns, csv, markdown in (
        (snakemake.params.methods, METHODS_COLUMNS, snakemake.output.methods_csv, snakemake.output.methods),
        (snakemake.params.ablation, ABLATION_COLUMNS, snakemake.output.ablation_csv, snakemake.output.ablation),
    ):
        table = paper_table(runs, {name: descriptions[name] for name in names}, paired)
        with atomic_path(csv) as tmp:
            table.to_csv(tmp, index=False, float_format="%.4g")
        text = to_markdown(table, columns, snakemake.params.reference) if names else "(no experiments listed)\n"
        with atomic_path(markdown) as tmp:
            tmp.write_text(text)
        log.info("%s\n%s", markdown, text)
