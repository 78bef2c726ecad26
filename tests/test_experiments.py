import pytest

from aslseg.config import ConfigError, default_config
from aslseg.experiments import experiment_config, settings_key
from aslseg.merge import deep_merge


def test_overrides_merge_into_the_defaults():
    config = default_config()
    full = experiment_config(config, "full")
    assert full["ssl"]["method"] == "supervised" and full["data"]["split"]["labeled"] == 1.0
    assert full["ssl"]["iterations"] == config["ssl"]["iterations"]
    assert full["data"]["split"]["test"] == config["data"]["split"]["test"]


def test_a_typo_in_an_override_is_an_error():
    config = default_config()
    config["experiments"]["bad"] = {"ssl": {"methd": "cps"}}
    with pytest.raises(ConfigError, match=r"(?s)experiment 'bad'.*ssl: Additional properties"):
        experiment_config(config, "bad")
    config["experiments"]["bad"] = {"ssl": {"method": "fixmatch"}}
    with pytest.raises(ConfigError, match=r"ssl.method: 'fixmatch' is not one of"):
        experiment_config(config, "bad")


def test_experiments_cannot_change_the_data_they_are_compared_on():
    config = default_config()
    config["experiments"]["bigger"] = {"data": {"size": 256}}
    with pytest.raises(ConfigError, match="only data.split.labeled"):
        experiment_config(config, "bigger")
    with pytest.raises(ConfigError, match="unknown experiment"):
        experiment_config(config, "nope")


def test_settings_key_is_stable_and_order_free():
    assert settings_key({"a": 1, "b": [1, 2]}) == settings_key({"b": [1, 2], "a": 1})
    assert settings_key({"a": 1}) != settings_key({"a": 2})
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
