"""Loading and validating the workflow configuration.

The JSON schema in schemas/config.schema.yaml is the single source of truth for keys, types and defaults;
a validator that fills the defaults (as snakemake.utils.validate does) applies them. Errors name the offending
key in one line, where Snakemake's own message buries it in a dump of the schema.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema
import yaml

from aslseg import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or inconsistent."""


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate `config` in place (filling defaults) and return it; raise ConfigError naming the key."""
    errors = sorted(_validator().iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError(f"invalid {source}:\n" + "\n".join(lines))
    _defaults_filler().validate(config)  # fills the defaults
    _check_consistency(config, source)
    return config


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema())


@functools.cache
def _defaults_filler() -> jsonschema.Draft202012Validator:
    """A validator that also fills each missing key with its schema default, as snakemake.utils.validate does
    (jsonschema's FAQ recipe), built once: the Snakefile validates the config and every experiment's effective
    config at each start, and building validators from the parsed YAML each time cost ~0.2 s per config."""
    validate_properties = jsonschema.Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        for name, subschema in properties.items():
            if "default" in subschema and isinstance(instance, dict):
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": set_defaults})(_schema())


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
