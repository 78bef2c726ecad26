"""Rule sam_prompts: one prompt per connected component of Pseudo Label 1, per slice, for one shard (none for
components lying mostly in the liver's rim)."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import numpy as np

from aslseg.io import write_json
from aslseg.prepared import case_id_of
from aslseg.pseudo_labels import read_masks
from aslseg.sam.liver_rim import off_rim
from aslseg.sam.prompts import PromptShape, slice_prompts

with job_logging(snakemake) as log:
    settings = snakemake.params.prompt
    shape = PromptShape.from_config(settings)
    max_rim_share = settings.get("max_rim_share")
    livers = {case_id_of(path): path for path in snakemake.input.images}
    cases, slices = {}, []
    for case, mask in sorted(read_masks([snakemake.input.pl1]).items()):
        cases[case] = list(mask.shape)
        if max_rim_share is not None:  # the liver masks are read only for the rule
            with np.load(livers[case]) as image:
                liver, pixel_mm = image["liver"], float(image["spacing"][1])
            mask = np.stack([off_rim(slice_mask, liver[position], pixel_mm, max_rim_share)
                             for position, slice_mask in enumerate(mask)])
        for position, slice_mask in enumerate(mask):
            prompts = slice_prompts(slice_mask, settings["prompt"], shape)
            if prompts:
                slices.append({"case": case, "position": position, "prompts": prompts})
    n_prompts = sum(len(entry["prompts"]) for entry in slices)
    write_json(snakemake.output[0], {"settings": settings, "cases": cases, "n_prompts": n_prompts, "slices": slices})
    log.info("%d prompts on %d of %d slices", n_prompts, len(slices), sum(shape[0] for shape in cases.values()))
