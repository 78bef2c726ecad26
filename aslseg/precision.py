"""Which precision a network runs in on this job's device: the config's `bf16` keys (ssl, sam, adapt) take
true, false or `auto`.

bfloat16 autocast is fast only where the hardware does bf16 natively: on a CPU with AVX512-BF16 or AMX it runs
SS(.) 1.3-1.6x and SAM's encoder ~2x faster than float32; on a CPU without (most laptops, AVX2-only cluster
nodes) oneDNN emulates it and the same encoder is ~8x *slower* (docs/BENCHMARKS.md). `auto` therefore asks the
device, at job start, on the machine the job runs on: a DAG planned on a login node and run on GPU nodes
names its artifacts by the setting (`auto`), never by the choice, and each trained artifact records the
precision it actually used.

ASLSEG_AUTO_BF16=on|off in the environment overrides what `auto` picks (to see the other kind of CPU's path on
this one, as the benchmarks and the float32 test run do); an explicit true/false in the config still wins.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

AUTO = "auto"
AUTO_OVERRIDE_ENV = "ASLSEG_AUTO_BF16"


@dataclass(frozen=True)
class Precision:
    """The precision chosen for one network in one job, and why (for the job's log and the artifact)."""

    setting: bool | str  # the config value: True, False or "auto"
    bf16: bool  # forward passes under bfloat16 autocast
    reason: str

    def describe(self, network: str) -> str:
        return f"{network}: {'bf16 autocast' if self.bf16 else 'float32'} ({self.reason})"

    def record(self) -> dict:
        return asdict(self)


def resolve_bf16(setting: bool | str, device) -> Precision:
    """The precision for config value `setting` (True, False or "auto") on `device` (a torch device or its
    name)."""
    if isinstance(setting, bool):
        return Precision(setting, setting, f"bf16: {str(setting).lower()} in the config")
    if setting != AUTO:
        raise ValueError(f"a bf16 setting is true, false or {AUTO!r}; got {setting!r}")
    override = os.environ.get(AUTO_OVERRIDE_ENV, "").strip().lower()
    if override in ("on", "off"):
        return Precision(setting, override == "on", f"auto, {AUTO_OVERRIDE_ENV}={override}")
    if override:
        raise ValueError(f"{AUTO_OVERRIDE_ENV} is on or off; got {os.environ[AUTO_OVERRIDE_ENV]!r}")
    native, why = native_bf16(device)
    return Precision(setting, native, f"auto: {why}")


def native_bf16(device) -> tuple[bool, str]:
    """Does `device` run bfloat16 natively, and what was found."""
    import torch  # here: the Snakefile imports nothing of torch, and data jobs need none

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{name} (compute capability {major}.{minor}) has bf16"
        return False, f"{name} (compute capability {major}.{minor}) has no native bf16"
    if device.type != "cpu":
        return False, f"device {device.type}: bf16 not known to be native there"
    cpu = cpu_model()
    if torch.cpu._is_amx_tile_supported():
        return True, f"CPU {cpu} has AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return True, f"CPU {cpu} has AVX512-BF16"
    return False, f"CPU {cpu} has neither AVX512-BF16 nor AMX, so bf16 would be emulated (several times slower)"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), for logs and benchmark headers."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_report() -> str:
    """One line for a benchmark's header: the CPU, its vector and bf16 capabilities, and what `auto` picks
    for the CPU here (after ASLSEG_AUTO_BF16)."""
    import torch

    flags = {
        "AVX512": torch.cpu._is_avx512_supported(),
        "AVX512-BF16": torch.cpu._is_avx512_bf16_supported(),
        "AMX": torch.cpu._is_amx_tile_supported(),
    }
    found = ", ".join(f"{name} {'yes' if present else 'no'}" for name, present in flags.items())
    chosen = resolve_bf16(AUTO, "cpu")
    return (f"CPU {cpu_model()}, {os.cpu_count()} cores; ATen kernels {torch.backends.cpu.get_cpu_capability()}; "
            f"{found}; bf16 auto -> {'bf16' if chosen.bf16 else 'float32'} ({chosen.reason})")
