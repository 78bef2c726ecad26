"""Which device a job computes on, and local GPU assignment: one free GPU per job on a multi-GPU workstation."""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path

_HELD_GPU_LOCKS: list = []  # open lock files: a claimed GPU stays this job's until the process ends


def claim_gpus(count: int, devices: str = "/dev", lock_dir: str | None = None) -> list[int] | None:
    """Give this job `count` GPUs that no other running aslseg job on this machine holds, through
    CUDA_VISIBLE_DEVICES (call before CUDA is first used).

    A scheduler sets CUDA_VISIBLE_DEVICES itself (SLURM with --gpus); Snakemake's local executor does not, so
    with `--resources gpu=N` on an N-GPU workstation every GPU job would otherwise use GPU 0. A GPU is held
    with an exclusive lock on a file per GPU, released by the OS when the job's process ends (even if killed).
    Returns the GPU indices, [] when too few are free (nothing is set), None when the machine has no NVIDIA GPU.
    """
    indices = sorted(int(m.group(1)) for p in Path(devices).glob("nvidia*") if (m := re.fullmatch(r"nvidia(\d+)", p.name)))
    if not indices:
        return None
    lock_root = Path(lock_dir or tempfile.gettempdir()) / "aslseg-gpu-locks"
    if not lock_root.is_dir():
        lock_root.mkdir(parents=True, exist_ok=True)
        lock_root.chmod(0o1777)  # shared by every user's jobs, like /tmp
    held = []
    for index in indices:
        try:
            handle = open(lock_root / f"gpu-{index}.lock", "a")
        except OSError:  # another user's lock file: leave that GPU to them
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        held.append((index, handle))
        if len(held) == count:
            break
    if len(held) < count:
        for _, handle in held:
            handle.close()
        return []
    _HELD_GPU_LOCKS.extend(handle for _, handle in held)
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(index) for index, _ in held)
    return [index for index, _ in held]


def default_device() -> str:
    """The GPU when the job was given one (a GPU config requests it), else the CPU."""
    import torch  # here, not at the top: data jobs import this module too, and need no torch

    return "cuda" if torch.cuda.is_available() else "cpu"
