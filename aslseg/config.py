"""Loading and validating the workflow configuration.

The JSON schema in schemas/config.schema.yaml is the single source of truth for keys, types and defaults;
snakemake.utils.validate fills the defaults. On failure we re-run the schema with jsonschema to name the
offending key in one line, because Snakemake's own message buries it in a dump of the schema.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml
from snakemake.utils import validate

from aslseg import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or inconsistent."""


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate `config` in place (filling defaults) and return it; raise ConfigError naming the key."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError(f"invalid {source}:\n" + "\n".join(lines))
    validate(config, str(SCHEMA_PATH))  # fills the defaults
    _check_consistency(config, source)
    return config


def _check_consistency(config: dict, source: str) -> None:
    """Rules that a JSON schema cannot express."""
    data = config["data"]
    low, high = data["window"]
    if not low < high:
        raise ConfigError(f"invalid {source}: data.window must be [low, high] with low < high, got {data['window']}")
    split = data["split"]
    if split["test"] + split["val"] >= 1:
        raise ConfigError(
            f"invalid {source}: data.split.test + data.split.val must leave training volumes, "
            f"got {split['test']} + {split['val']}"
        )
    if data["source"] == "lits":
        lits_dir = data["lits_dir"]
        if not lits_dir:
            raise ConfigError(f"invalid {source}: data.source is 'lits' but data.lits_dir is not set")
        if not Path(lits_dir).is_dir():
            raise ConfigError(f"invalid {source}: data.lits_dir {lits_dir!r} is not a directory")


def default_config() -> dict:
    """The schema's defaults alone (what an empty config.yaml means)."""
    return validate_config({}, "default config")


def load_config(path: str | Path) -> dict:
    with open(path) as handle:
        config = yaml.safe_load(handle) or {}
    return validate_config(copy.deepcopy(config), str(path))
