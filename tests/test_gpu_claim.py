"""GPU hand-out on a multi-GPU workstation (Snakemake's local executor sets no CUDA_VISIBLE_DEVICES)."""

import os
import subprocess
import sys

import pytest

from aslseg import gpus


@pytest.fixture
def fake_machine(tmp_path, monkeypatch):
    devices = tmp_path / "dev"
    devices.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (devices / name).touch()
    # setenv first so that teardown restores the variable's original state after claim_gpus sets it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(gpus, "_HELD_GPU_LOCKS", [])
    return devices, tmp_path / "locks"


def claim_in_child(devices, locks, count):
    """Another job: a separate process that claims GPUs and reports CUDA_VISIBLE_DEVICES."""
    code = (f"import os; from aslseg.gpus import claim_gpus; "
            f"print(claim_gpus({count}, {str(devices)!r}, {str(locks)!r}), os.environ.get('CUDA_VISIBLE_DEVICES'))")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60).stdout


def test_concurrent_jobs_get_different_gpus(fake_machine):
    devices, locks = fake_machine
    assert gpus.claim_gpus(1, str(devices), str(locks)) == [0]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert claim_in_child(devices, locks, 1).split() == ["[1]", "1"]  # GPU 0 is held by this process
    assert claim_in_child(devices, locks, 2).split() == ["[]", "None"]  # not enough free: nothing set


def test_no_gpu_means_no_change(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpus.claim_gpus(1, str(tmp_path), str(tmp_path)) is None
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
