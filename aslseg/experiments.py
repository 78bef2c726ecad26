"""Experiments: named sets of overrides of the config's sections, and the keys that let two experiments
share an artifact when the settings it depends on are the same.

An experiment's effective config is the base config with its overrides merged in (dicts merge key by key,
everything else replaces), validated against the same schema as the base, so a typo in an override is as
much an error as one in the base.
"""

from __future__ import annotations

import hashlib
import json

from aslseg.config import ConfigError, validate_config
from aslseg.merge import deep_merge

# Sections an experiment may override; the rest (results_dir, seeds, targets, resources) are per run. Of
# `data`, only the labeled fraction: every experiment must see the same prepared volumes and test set.
OVERRIDABLE = ("data", "ssl", "sam", "adapt", "select", "loop")
DATA_OVERRIDABLE = {"split": {"labeled"}}


def experiment_config(config: dict, name: str) -> dict:
    """The effective config of experiment `name` (validated; raises ConfigError naming the experiment)."""
    experiments = config["experiments"]
    if name not in experiments:
        raise ConfigError(f"unknown experiment {name!r}; defined: {sorted(experiments)}")
    overrides = experiments[name] or {}
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ConfigError(f"experiment {name!r} overrides {unknown}; experiments may override {list(OVERRIDABLE)}")
    data = overrides.get("data", {})
    if set(data) - set(DATA_OVERRIDABLE) or set(data.get("split", {})) - DATA_OVERRIDABLE["split"]:
        raise ConfigError(f"experiment {name!r}: of the data section, only data.split.labeled may be overridden")
    base = {key: value for key, value in config.items() if key != "experiments"}
    return validate_config(deep_merge(base, overrides), f"experiment {name!r}")


def settings_key(*sections: dict) -> str:
    """A short, stable name for a combination of settings: artifacts that depend only on these settings
    are computed once and shared by every experiment that has them."""
    text = json.dumps(sections, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]
