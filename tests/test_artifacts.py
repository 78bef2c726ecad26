"""What an artifact is called and what it depends on (aslseg/artifacts.py), checked without Snakemake: which
edits rename (and so rerun) which artifacts, which experiments share, and that names and wildcards agree."""

import re

import pytest

from aslseg import artifacts
from aslseg.artifacts import (
    NONE, WILDCARDS, AdaptModel, AdaptRun, Catalog, Decoder, Embeddings, Loop, SamRun, Selection, StageOneRun, Synthesis,
)
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
        "ssl": StageOneRun.of(settings).name,
        "embed": Embeddings.of(sam).key,
        "tune": Decoder.of(sam).key,
        "samrun": artifacts.sam_run_name(sam),
        "synth": Synthesis.of(sam, adapt).key,
        "adapt": AdaptModel.of(sam, adapt).key,
        "adaptrun": artifacts.adapt_run_name(sam, adapt),
        "select": Selection.of(settings["select"]).key,
        "loop": Loop.of(settings).name,
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
        # which PL1 components get a prompt: the same, and the decoder (tuned on ground truth) stays
        ({"sam": {"max_rim_share": 0.3}}, {"samrun", "synth", "adapt", "adaptrun", "loop"}),
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
    assert StageOneRun.of(edited).name == StageOneRun.of(supervised).name
    assert StageOneRun.of(effective(ssl={"method": "bcp", "ema_decay": 0.5})).name != \
        StageOneRun.of(effective(ssl={"method": "bcp"})).name


def test_an_option_left_at_null_renames_nothing():
    """bcp_confidence: null (the reference's BCP) keeps the name BCP had before the option existed."""
    reference = StageOneRun.of(effective(ssl={"method": "bcp", "bcp_confidence": None}))
    assert "bcp_confidence" not in reference.settings
    assert reference.name == "bcp-a06aa7b069"  # the default's name until session 18
    assert StageOneRun.of(effective(ssl={"method": "bcp"})).name != reference.name


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
            assert (model.ssl_run, model.seed, model.round) == (StageOneRun.of(settings).name, 3, round_index)
            assert model.labeled == f"{settings['data']['split']['labeled']:g}"
            if round_index:
                assert catalog.model_dir(model.experiment, 3, round_index) == folder
    assert catalog.loop_experiments == ["aslseg", "half"]
    assert len(catalog.embeddings) == 1  # one set of embeddings for every experiment and labeled fraction
    assert len(catalog.tunes) == 1  # one fine-tuning recipe (a decoder per labeled draw)
    assert Decoder.of(experiments["half"]["sam"]).file(artifacts.DECODER, 0.5, 3).endswith("/labeled-0.5/seed-3/decoder.pt")


def test_experiments_with_the_same_stage1_share_round_0_and_part_at_the_loop():
    a, b = effective(**BCP), effective(**{**BCP, "select": {"rule": "threshold", "threshold": 0.7}})
    assert artifacts.model_dir(a, 0, 0) == artifacts.model_dir(b, 0, 0)
    assert artifacts.model_dir(a, 0, 1) != artifacts.model_dir(b, 0, 1)
    assert artifacts.selection_dir(a, 0, 0) != artifacts.selection_dir(b, 0, 0)
    assert artifacts.selection_dir(a, 0, 0).startswith(artifacts.model_dir(a, 0, 0) + "/sam-")


def test_an_is_named_by_exactly_the_keys_its_training_reads():
    """A key AdaptSettings reads but AdaptModel.KEYS omits would let two different ANs share one name."""
    from dataclasses import fields

    from aslseg.adapt.train import AdaptSettings

    pl3_threshold = {"threshold"}  # read where AN refines (PL3), not in training
    assert {field.name for field in fields(AdaptSettings)} | pl3_threshold == set(AdaptModel.KEYS)


# The names of the default config's artifacts as they were when each kind got its name: results folders made
# before a change of this module must keep their artifacts (a renamed artifact is computed again). ssl and
# loop were renamed on purpose when ssl.loss_in_liver changed what Stage I trains (from bcp-595531e8cc and
# bcp-65bc89d16c); select and loop when select.precision_confidence changed which slices are accepted (from
# 49dc21efc0 and bcp-02ff5291a8), and again when the score took in SAM's IoU and AN's confidence and the
# calibrated precision rose to 0.6 (from 716dcd7295 and bcp-76fa1d4138). samrun, synth, adapt, adaptrun and loop
# when sam.max_rim_share became 0.5 by default (from box-a579728ebb, c1667e1702, 87033c9142, 7010544099 and
# bcp-3331e8686e): the names the option had before, so folders made with it keep theirs. select and loop again
# when select.min_val_slices became 4 (from b7356c47bd and bcp-1cab0b6e3b): it changes which slices are accepted
# where the val volumes certify only a small set (the float32 path), and the names must say so. loop.warm_start
# and select.negatives, off by default, rename nothing.
DEFAULT_NAMES = {"ssl": "bcp-590b5e4de8", "embed": "91078f3bef", "tune": "891038bcaf", "samrun": "box-933991a00c",
                 "synth": "e2defc8739", "adapt": "019d2cb164", "adaptrun": "7cdaf5fb2a", "select": "fac9552bdb",
                 "loop": "bcp-9b9f7200b3"}


def test_the_default_configs_artifacts_keep_their_names():
    assert names(effective(ssl={"method": "bcp"})) == DEFAULT_NAMES
    warm = names(effective(ssl={"method": "bcp"}, loop={"warm_start": True}))
    assert warm["loop"] != DEFAULT_NAMES["loop"] and warm["ssl"] == DEFAULT_NAMES["ssl"]
    # the floor of 5 val slices, the default until session 29: the names it had then
    floor5 = names(effective(ssl={"method": "bcp"}, select={"min_val_slices": 5}))
    assert floor5 == {**DEFAULT_NAMES, "select": "b7356c47bd", "loop": "bcp-1cab0b6e3b"}
    # every PL1 component prompted, the default until session 26 (with that floor): the names it had then
    every_component = names(effective(ssl={"method": "bcp"}, sam={"max_rim_share": None}, select={"min_val_slices": 5}))
    assert every_component == {**DEFAULT_NAMES, "select": "b7356c47bd", "samrun": "box-a579728ebb",
                               "synth": "c1667e1702", "adapt": "87033c9142", "adaptrun": "7010544099",
                               "loop": "bcp-3331e8686e"}
    assert artifacts.LiverStage.of(default_config()).key == "24086e9002"


def test_each_job_receives_settings_its_artifacts_name_covers():
    """What a job receives is part of what names its artifact: a key outside the hash would let two different
    artifacts share a name."""
    settings = effective(**BCP)
    sam, adapt = settings["sam"], settings["adapt"]
    run = SamRun.of(sam)
    hashed = {**run.decoder.settings, **run.prompt_settings, **run.predict_settings}
    assert Decoder.of(sam).settings.items() <= hashed.items()
    assert run.prompt_settings.items() <= hashed.items() and run.predict_settings.items() <= hashed.items()
    assert AdaptRun.of(sam, adapt).model.training == AdaptModel.of(sam, adapt).training
    assert set(AdaptModel.of(sam, adapt).training) == set(AdaptModel.KEYS)
    assert Embeddings.of(sam).settings.items() <= Decoder.of(sam).settings.items()
