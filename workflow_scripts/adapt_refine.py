"""Rule adapt_refine: Pseudo Label 3 for one shard: AN(image ⊕ PL2 [⊕ SAM probability ⊕ PL1]), or PL2 as it
is when the round's judgement (rule adapt_judge) found AN worse than PL2 on the val volumes."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import json

import torch

from aslseg.adapt.train import load_adaptation, refine_cases
from aslseg.gpus import default_device
from aslseg.prepared import PreparedFiles
from aslseg.pseudo_labels import read_masks, read_probabilities, write_shard

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    pl2, sam_probability = read_masks([snakemake.input.pl2]), read_probabilities([snakemake.input.pl2])
    judgement = json.loads(open(snakemake.input.judgement).read()) if "judgement" in snakemake.input.keys() else None
    if judgement is not None and not judgement["use_an"]:
        log.info("AN is not used this round: val Dice PL2 %.3f, AN %.3f; PL3 = PL2", judgement["pl2_val_dice"],
                 judgement["an_val_dice"])
        write_shard(snakemake.output[0], pl2, sam_probability)
    else:
        model, adapt, precision = load_adaptation(snakemake.input.model, default_device())
        log.info(precision.describe("AN(.)"))
        files = PreparedFiles(snakemake.input.images)
        images = {case: files.slices(case) for case in sorted(files.images)}
        masks, probabilities = refine_cases(model, adapt, images, read_masks([snakemake.input.pl1]), pl2,
                                            sam_probability)
        for case in masks:
            log.info("case %d: PL2 %d -> PL3 %d tumor pixels", case, pl2[case].sum(), masks[case].sum())
        write_shard(snakemake.output[0], masks, probabilities)
