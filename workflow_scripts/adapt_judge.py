"""Rule adapt_judge: does AN improve this round's real pseudo labels? AN refines the val volumes' PL2 and
both are compared with the val ground truth (aslseg/adapt/judge.py)."""

from aslseg.workflow import job_logging, reuse_previous_round_outputs

reuse_previous_round_outputs(snakemake)  # before torch and MONAI load (aslseg/workflow.py)

import torch

from aslseg.adapt.judge import judge_adaptation
from aslseg.adapt.train import load_adaptation, refine_cases
from aslseg.gpus import default_device
from aslseg.io import write_json
from aslseg.prepared import PreparedFiles
from aslseg.pseudo_labels import read_masks, read_probabilities

with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    model, adapt, precision = load_adaptation(snakemake.input.model, default_device())
    log.info(precision.describe("AN(.)"))
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    cases = sorted(files.images)
    pl2 = read_masks([snakemake.input.pl2])
    refined, _ = refine_cases(model, adapt, {case: files.slices(case) for case in cases},
                              read_masks([snakemake.input.pl1]), pl2, read_probabilities([snakemake.input.pl2]))
    judgement = judge_adaptation(pl2, refined, {case: files.tumor(case) for case in cases})
    log.info("val volumes %s: Dice PL2 %.3f, AN %.3f -> %s", cases, judgement["pl2_val_dice"],
             judgement["an_val_dice"], "AN refines this round" if judgement["use_an"] else "PL3 = PL2 this round")
    write_json(snakemake.output[0], judgement)
