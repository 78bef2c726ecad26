"""Rule prepare: one LiTS-format case -> prepared image file, tumor label file and case stats."""

from pathlib import Path

import numpy as np

from aslseg.data.lits import CaseFiles, load_case
from aslseg.data.prepare import prepare_case
from aslseg.data.stats import case_stats
from aslseg.io import write_json, write_npz
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    files = CaseFiles(
        int(snakemake.wildcards.case), Path(snakemake.input.volume), Path(snakemake.input.segmentation)
    )
    case = load_case(files)
    params = snakemake.params
    prepared = prepare_case(
        case, tuple(params.window), params.size, params.slice_margin, params.crop, params.crop_margin_mm
    )
    # float16 halves the files; its step near 1.0 (5e-4) is 0.2 HU in the default window.
    write_npz(
        snakemake.output.image,
        image=prepared.image.astype(np.float16),
        liver=prepared.liver,
        slice_index=prepared.slice_index,
        crop_box=prepared.crop_box,
        spacing=prepared.spacing,
    )
    write_npz(snakemake.output.label, tumor=prepared.tumor)
    stats = case_stats(files, case, prepared)
    write_json(snakemake.output.stats, stats)
    log.info("%s", stats)
