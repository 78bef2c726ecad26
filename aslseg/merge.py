"""Config overlays merged into a base: dicts merge key by key, everything else replaces. Free of the
validator's dependencies, so scripts that run where only torch is installed (benchmarks/gpu_check.py) can
use it too."""

from __future__ import annotations

import copy


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
