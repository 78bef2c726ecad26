"""Glue between Snakemake's `script:` jobs and the package: logging and a readable failure line."""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def job_logging(snakemake) -> Iterator[logging.Logger]:
    """Send the job's log to its `log:` file; on failure print one line that names the problem and exit 1.

    Snakemake shows a failed job's log path, but the reason (a bad input file, say) should be on screen.
    """
    log_path = snakemake.log[0] if snakemake.log else None
    handle = open(log_path, "w") if log_path else sys.stderr
    logger = logging.getLogger(f"aslseg.{snakemake.rule}")
    logger.handlers[:] = [logging.StreamHandler(handle)]
    logger.handlers[0].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.setLevel(logging.INFO)
    logger.propagate = False
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
