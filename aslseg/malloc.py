"""glibc malloc settings for torch on a CPU: keep freed memory for reuse instead of handing it back.

By default glibc serves large blocks with fresh mmap() calls and trims the heap after frees, so every forward
pass faults its activation memory in page by page again. For SAM's image encoder that put a third of the CPU
time into the kernel on this machine and made embedding 1.4x slower in the workflow (docs/BENCHMARKS.md).
These are the settings of the MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ environment variables,
applied from inside the job so that they hold however it was launched (locally, on SLURM, from the tests).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers (glibc malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: smaller blocks come from the heap and are reused
TRIM_THRESHOLD = 2**30  # free heap memory kept for reuse before any is returned to the system


def keep_freed_memory() -> bool:
    """Apply the settings where the C library is glibc; return whether it took them (False elsewhere: the
    defaults stay, which is only slower)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
