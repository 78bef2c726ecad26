"""Glue between Snakemake's `script:` jobs and the package: logging and a readable failure line."""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import socket
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator

from aslseg.gpus import claim_gpus
from aslseg.io import atomic_path
from aslseg.malloc import keep_freed_memory


@contextmanager
def job_logging(snakemake) -> Iterator[logging.Logger]:
    """Send the job's log to its `log:` file; on failure print one line that names the problem and exit 1.

    Snakemake shows a failed job's log path, but the reason (a bad input file, say) should be on screen.
    """
    keep_freed_memory()  # before the job allocates anything large (aslseg/malloc.py)
    log_path = snakemake.log[0] if snakemake.log else None
    handle = open(log_path, "w") if log_path else sys.stderr
    logger = logging.getLogger(f"aslseg.{snakemake.rule}")
    logger.handlers[:] = [logging.StreamHandler(handle)]
    logger.handlers[0].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if os.environ.get("SLURM_JOB_ID"):  # which scheduler job ran this (sacct / seff / the SLURM log by id)
        logger.info("SLURM job %s on %s", os.environ["SLURM_JOB_ID"], socket.gethostname())
    requested = int(getattr(snakemake.resources, "gpu", 0) or 0)
    if requested > 0 and "CUDA_VISIBLE_DEVICES" not in os.environ:
        claimed = claim_gpus(requested)
        if claimed:
            logger.info("GPUs %s of this machine (CUDA_VISIBLE_DEVICES)", os.environ["CUDA_VISIBLE_DEVICES"])
        elif claimed is not None:
            logger.warning("all GPUs are held by other aslseg jobs; pass --resources gpu=N (N = GPUs here)")
    try:
        yield logger
    except Exception as error:
        traceback.print_exc(file=handle)
        handle.flush()
        # One line on screen (the traceback is in the log); the exit status tells Snakemake the job failed,
        # and Snakemake then deletes whatever outputs exist.
        print(f"aslseg: rule {snakemake.rule} failed: {error}\n  (traceback in {log_path})", file=sys.stderr)
        raise SystemExit(1) from error
    finally:
        if handle is not sys.stderr:
            handle.close()


def reuse_previous_round_outputs(snakemake) -> None:
    """End a round >= 1 job that would only repeat the previous round's: copy that job's outputs and exit 0.

    ssl_train reuses the previous round's model when the previous selection accepted nothing (the list is
    unchanged). Then every job derived from the model (PL1, prompts, PL2, PL3, scores, test metrics) has
    exactly the previous round's inputs, so its outputs are the previous round's files. The rule passes the
    round's model, the previous round's model and the previous round's outputs (aslseg/job_inputs.py,
    `JobInputs.previous_round`); a job whose model differs does its work as usual. Scripts call it before their
    other imports: a copying job then never loads torch and MONAI, which take seconds per job.
    """
    inputs = snakemake.input
    if "previous_outputs" not in inputs.keys():
        return
    if not filecmp.cmp(inputs.round_model, inputs.previous_model, shallow=False):
        return
    with job_logging(snakemake) as log:
        for source, target in zip(inputs.previous_outputs, snakemake.output, strict=True):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        log.info("this round's model is the previous round's (%s), so this job repeats the previous round's: "
                 "its outputs are copied from %s", inputs.previous_model, ", ".join(inputs.previous_outputs))
    raise SystemExit(0)
