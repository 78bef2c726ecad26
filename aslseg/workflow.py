"""Glue between Snakemake's `script:` jobs and the package: logging and a readable failure line."""

from __future__ import annotations

import logging
import os
import socket
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator

from aslseg.gpus import claim_gpus
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
