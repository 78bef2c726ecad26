import pytest
import yaml

from aslseg.config import ConfigError, default_config, load_config, validate_config
from tests.conftest import REPO


def test_defaults_fill_every_section():
    config = default_config()
    assert config["data"]["source"] == "phantom"
    assert config["data"]["window"] == [-160, 240]
    assert config["data"]["split"]["labeled"] == 0.1
    assert config["data"]["phantom"]["n_volumes"] >= 2


def test_shipped_config_is_valid_and_matches_schema_defaults():
    """config.yaml documents the defaults; it must not drift from the schema's."""
    assert load_config(REPO / "config.yaml") == default_config()


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"data\.size: 'abc' is not of type 'integer'"):
        validate_config({"data": {"size": "abc"}})


def test_unknown_source_names_the_key():
    with pytest.raises(ConfigError, match=r"data\.source: 'dicom' is not one of"):
        validate_config({"data": {"source": "dicom"}})


def test_unknown_key_is_an_error_not_ignored():
    with pytest.raises(ConfigError, match=r"data\.split: Additional properties .*'labelled'"):
        validate_config({"data": {"split": {"labelled": 0.2}}})


def test_lits_needs_an_existing_directory(tmp_path):
    with pytest.raises(ConfigError, match="data.lits_dir is not set"):
        validate_config({"data": {"source": "lits"}})
    with pytest.raises(ConfigError, match="is not a directory"):
        validate_config({"data": {"source": "lits", "lits_dir": str(tmp_path / "missing")}})


def test_inconsistent_values_are_named():
    with pytest.raises(ConfigError, match="data.window"):
        validate_config({"data": {"window": [240, -160]}})
    with pytest.raises(ConfigError, match="data.split.test"):
        validate_config({"data": {"split": {"test": 0.6, "val": 0.5}}})


def test_load_config_reports_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"seeds": "zero"}))
    with pytest.raises(ConfigError, match=r"bad\.yaml:\n  seeds: 'zero' is not of type 'array'"):
        load_config(path)


def _leaf_properties(node: dict, path: str = ""):
    for key, spec in node.get("properties", {}).items():
        if "properties" in spec:
            yield from _leaf_properties(spec, f"{path}{key}.")
        else:
            yield f"{path}{key}", spec


def test_schema_documents_every_key():
    """Every key has a default and a description, and no stray keyword (a YAML slip such as an unquoted
    comma inside a flow mapping would create one)."""
    import jsonschema

    schema = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    keywords = {"type", "items", "minItems", "maxItems", "default", "description", "enum", "minimum", "maximum",
                "additionalProperties", "uniqueItems",
                "exclusiveMinimum", "exclusiveMaximum"}
    for key, spec in _leaf_properties(schema):
        assert "default" in spec and spec.get("description"), f"{key}: needs a default and a description"
        assert set(spec) <= keywords, f"{key}: unexpected schema keywords {set(spec) - keywords}"


def test_gpu_lits_overlay_is_valid_once_lits_dir_points_somewhere(tmp_path):
    from aslseg.merge import deep_merge

    base = yaml.safe_load((REPO / "config.yaml").read_text())
    overlay = yaml.safe_load((REPO / "configs/lits-gpu.yaml").read_text())
    overlay["data"]["lits_dir"] = str(tmp_path)
    config = validate_config(deep_merge(base, overlay), "config.yaml + configs/lits-gpu.yaml")
    assert config["resources"]["gpu"] == 1 and config["ssl"]["iterations"] == 30000
