"""Precision per machine: `auto` resolves to what the device does natively, explicit values win, the choice is
logged and recorded; and the console progress lines of long steps."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from aslseg.config import ConfigError, default_config, validate_config
from aslseg.metrics import case_metrics, volume_dice
from aslseg.precision import AUTO_OVERRIDE_ENV, native_bf16, resolve_bf16
from aslseg.progress import Progress, format_seconds
from aslseg.seg2d.network import build_network


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv(AUTO_OVERRIDE_ENV, raising=False)


def test_auto_picks_bf16_exactly_where_this_cpu_has_it_natively():
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    chosen = resolve_bf16("auto", "cpu")
    assert chosen.bf16 == native and chosen.setting == "auto"
    assert ("AVX512-BF16" in chosen.reason or "AMX" in chosen.reason)
    assert native_bf16(torch.device("cpu"))[0] == native


def test_the_chosen_precision_runs_on_this_machine():
    chosen = resolve_bf16("auto", "cpu")
    network = build_network((4, 4, 8, 8, 16, 4), bf16=chosen.bf16)
    logits = network(torch.rand(1, 1, 32, 32))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


@pytest.mark.parametrize("setting", [True, False])
def test_an_explicit_setting_wins_over_auto_and_the_override(monkeypatch, setting):
    monkeypatch.setenv(AUTO_OVERRIDE_ENV, "off" if setting else "on")
    chosen = resolve_bf16(setting, "cpu")
    assert chosen.bf16 is setting and "in the config" in chosen.reason


@pytest.mark.parametrize("override, expected", [("off", False), ("on", True), ("OFF", False)])
def test_the_environment_overrides_what_auto_picks(monkeypatch, override, expected):
    monkeypatch.setenv(AUTO_OVERRIDE_ENV, override)
    chosen = resolve_bf16("auto", "cpu")
    assert chosen.bf16 is expected and AUTO_OVERRIDE_ENV in chosen.reason


def test_bad_settings_are_named(monkeypatch):
    with pytest.raises(ValueError, match="'fast'"):
        resolve_bf16("fast", "cpu")
    monkeypatch.setenv(AUTO_OVERRIDE_ENV, "maybe")
    with pytest.raises(ValueError, match=AUTO_OVERRIDE_ENV):
        resolve_bf16("auto", "cpu")
    with pytest.raises(TypeError, match="auto"):
        build_network((4, 4, 8, 8, 16, 4), bf16="auto")  # resolved before a network is built


def test_the_log_line_names_the_choice_and_the_reason(monkeypatch):
    monkeypatch.setenv(AUTO_OVERRIDE_ENV, "off")
    assert resolve_bf16("auto", "cpu").describe("SS(.)") == f"SS(.): float32 (auto, {AUTO_OVERRIDE_ENV}=off)"
    assert resolve_bf16(True, "cpu").describe("AN(.)") == "AN(.): bf16 autocast (bf16: true in the config)"


def test_the_schema_defaults_to_auto_and_takes_only_auto_true_false():
    defaults = default_config()
    assert defaults["ssl"]["bf16"] == defaults["sam"]["bf16"] == defaults["adapt"]["bf16"] == "auto"
    for value in ("auto", True, False):
        validate_config({"ssl": {"bf16": value}})
    with pytest.raises(ConfigError, match="ssl.bf16"):
        validate_config({"ssl": {"bf16": "yes"}})


def test_training_records_the_precision_it_used(monkeypatch):
    from tests.test_ssl_training import bright_square_slices, settings
    from aslseg.ssl.train import train

    monkeypatch.setenv(AUTO_OVERRIDE_ENV, "off")
    result = train("supervised", bright_square_slices(), None, [], settings(iterations=2, val_every=10, bf16="auto"),
                   seed=0, progress=False)
    assert result.precision.bf16 is False and result.precision.setting == "auto"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_prints_a_line_per_interval_with_what_is_left_and_a_closing_line():
    clock, out = Clock(), io.StringIO()
    progress = Progress(10, "ssl_train bcp", "iterations", interval=30, stream=out, clock=clock)
    for _ in range(10):
        clock.now += 10
        progress.advance()
    lines = out.getvalue().splitlines()
    assert lines == [
        "aslseg: ssl_train bcp: 3/10 iterations (30%), 30 s so far, about 1 min 10 s left",
        "aslseg: ssl_train bcp: 6/10 iterations (60%), 1 min 0 s so far, about 40 s left",
        "aslseg: ssl_train bcp: 9/10 iterations (90%), 1 min 30 s so far, about 10 s left",
        "aslseg: ssl_train bcp: 10 iterations done in 1 min 40 s",
    ]


def test_progress_is_silent_for_a_short_step_and_when_disabled():
    for enabled, step in ((True, 1.0), (False, 100.0)):
        clock, out = Clock(), io.StringIO()
        progress = Progress(5, "x", "slices", enabled=enabled, interval=30, stream=out, clock=clock)
        for _ in range(5):
            clock.now += step
            progress.advance()
        assert out.getvalue() == ""


def test_progress_defaults_to_a_sparse_interval_off_a_terminal():
    assert Progress(1, "x", "y", stream=io.StringIO()).interval == 120.0
    assert format_seconds(3725) == "1 h 02 min"


def test_volume_dice_is_case_metrics_dice():
    rng = np.random.default_rng(0)
    gt = rng.random((4, 16, 16)) > 0.8
    for pred in (rng.random((4, 16, 16)) > 0.7, np.zeros_like(gt), gt):
        assert volume_dice(pred, gt) == case_metrics(pred, gt, (1.0, 1.0, 1.0))["dice"]
    empty = np.zeros_like(gt)
    assert volume_dice(empty, empty) == 1.0 and volume_dice(gt, empty) == 0.0
