"""What an artifact is called and what it depends on (aslseg/artifacts.py), checked without Snakemake: which
edits rename (and so rerun) which artifacts, which experiments share, and that names and wildcards agree."""

import re

import pytest

from aslseg import artifacts
from aslseg.artifacts import NONE, WILDCARDS, Catalog
from aslseg.config import default_config
from aslseg.experiments import experiment_config


def effective(**overrides) -> dict:
    """The effective config of an experiment of the default config with `overrides` (section -> dict)."""
    config = default_config()
    config["experiments"]["probe"] = overrides
    return experiment_config(config, "probe")


def names(settings: dict) -> dict:
    """Every name one experiment's artifacts have."""
    sam, adapt = settings["sam"], settings["adapt"]
    return {
        "ssl": artifacts.ssl_run_name(settings),
        "embed": artifacts.embed_key(sam),
        "tune": artifacts.tune_key(sam),
        "samrun": artifacts.sam_run_name(sam),
        "synth": artifacts.synth_key(sam, adapt),
        "adapt": artifacts.adapt_model_name(sam, adapt),
        "adaptrun": artifacts.adapt_run_name(sam, adapt),
        "select": artifacts.select_key(settings["select"]),
        "loop": artifacts.loop_name(settings),
    }


def renamed(base: dict, edited: dict) -> set[str]:
    return {key for key in base if base[key] != edited[key]}


BCP = {"ssl": {"method": "bcp"}, "loop": {"rounds": 2}}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a selection setting: the selection and the loop, never Stage I, SAM or AN
        ({"select": {"rule": "threshold", "threshold": 0.7}}, {"select", "loop"}),
        # SAM's mask threshold: the SAM run and what is derived from it, not the embeddings or the decoder
        ({"sam": {"threshold": 0.6}}, {"samrun", "synth", "adapt", "adaptrun", "loop"}),
        # fine-tuning: the decoder and what follows, not the embeddings
        ({"sam": {"finetune": {"iterations": 7}}}, {"tune", "samrun", "synth", "adapt", "adaptrun", "loop"}),
        # AN's training: AN and what follows, not its synthetic data
        ({"adapt": {"lr": 0.123}}, {"adapt", "adaptrun", "loop"}),
        ({"adapt": {"fallback": False}}, {"adaptrun", "loop"}),
        # a Stage I setting: the Stage I run and the loop built on it, nothing of SAM or AN
        ({"ssl": {"lr": 0.0123}}, {"ssl", "loop"}),
        # how many rounds: nothing (a one- and a two-round experiment share round 1)
        ({"loop": {"rounds": 1}}, set()),
    ],
)
def test_an_edit_renames_exactly_what_depends_on_it(edit, expected):
    base = names(effective(**BCP))
    edited = effective(**{section: {**BCP.get(section, {}), **values} for section, values in {**BCP, **edit}.items()})
    assert renamed(base, names(edited)) == expected


def test_a_setting_only_another_method_reads_leaves_the_run_unchanged():
    supervised = effective(ssl={"method": "supervised"})
    edited = effective(ssl={"method": "supervised", "ema_decay": 0.5})
    assert artifacts.ssl_run_name(edited) == artifacts.ssl_run_name(supervised)
    assert artifacts.ssl_run_name(effective(ssl={"method": "bcp", "ema_decay": 0.5})) != \
        artifacts.ssl_run_name(effective(ssl={"method": "bcp"}))


def test_without_sam_or_an_the_earlier_pseudo_label_is_used_as_it_is():
    no_sam = effective(sam={"enabled": False})
    no_adapt = effective(adapt={"enabled": False})
    assert artifacts.sam_run_name(no_sam["sam"]) == NONE
    assert artifacts.adapt_run_name(no_sam["sam"], no_sam["adapt"]) == NONE
    assert artifacts.adapt_run_name(no_adapt["sam"], no_adapt["adapt"]) == NONE
    model = "ssl/bcp-0123456789/seed-0"
    assert artifacts.pseudo_label_3(model, NONE, NONE, 1) == f"{model}/pl1/shard-1.npz"
    assert artifacts.pseudo_label_3(model, "box-abcdefabcd", NONE, 1) == f"{model}/sam-box-abcdefabcd/pl2/shard-1.npz"
    assert artifacts.pseudo_label_3(model, "box-abcdefabcd", "0123456789", 1) == \
        f"{model}/sam-box-abcdefabcd/adapt-0123456789/pl3/shard-1.npz"


def test_every_name_matches_its_wildcard_and_round_trips_through_the_catalog():
    experiments = {"supervised": effective(ssl={"method": "supervised"}, loop={"rounds": 0}),
                   "aslseg": effective(**BCP), "half": effective(data={"split": {"labeled": 0.5}}, **BCP)}
    catalog = Catalog(experiments)
    for name, settings in experiments.items():
        for key, value in names(settings).items():
            assert re.fullmatch(WILDCARDS.get(key, artifacts.NAMED_HASH), value), (name, key, value)
        for round_index in range(settings["loop"]["rounds"] + 1):
            folder = catalog.model_dir(name, 3, round_index)
            assert re.fullmatch(WILDCARDS["model"], folder)
            model = catalog.parse_model(folder)
            assert (model.ssl_run, model.seed, model.round) == (artifacts.ssl_run_name(settings), 3, round_index)
            assert model.labeled == f"{settings['data']['split']['labeled']:g}"
            if round_index:
                assert catalog.model_dir(model.experiment, 3, round_index) == folder
    assert catalog.loop_experiments == ["aslseg", "half"]
    assert len(catalog.embeddings) == 1  # one set of embeddings for every experiment and labeled fraction
    assert len(catalog.tunes) == 1  # one fine-tuning recipe (a decoder per labeled draw)
    assert artifacts.finetune_dir(experiments["half"]["sam"], 0.5, 3).endswith("/labeled-0.5/seed-3")


def test_experiments_with_the_same_stage1_share_round_0_and_part_at_the_loop():
    a, b = effective(**BCP), effective(**{**BCP, "select": {"rule": "threshold", "threshold": 0.7}})
    assert artifacts.model_dir(a, 0, 0) == artifacts.model_dir(b, 0, 0)
    assert artifacts.model_dir(a, 0, 1) != artifacts.model_dir(b, 0, 1)
    assert artifacts.selection_dir(a, 0, 0) != artifacts.selection_dir(b, 0, 0)
    assert artifacts.selection_dir(a, 0, 0).startswith(artifacts.model_dir(a, 0, 0) + "/sam-")


def test_an_is_named_by_exactly_the_keys_its_training_reads():
    """A key AdaptSettings reads but ADAPT_TRAINING omits would let two different ANs share one name."""
    from dataclasses import fields

    from aslseg.adapt.train import AdaptSettings

    pl3_threshold = {"threshold"}  # read where AN refines (PL3), not in training
    assert {field.name for field in fields(AdaptSettings)} | pl3_threshold == set(artifacts.ADAPT_TRAINING)
