"""The training settings of SS(.) and which of them each method reads.

Torch-free on purpose: the Snakefile imports it at parse time to name an SSL run by the settings its model
depends on, so that editing, say, `uamt_passes` retrains UA-MT only and not the supervised baseline.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aslseg.seg2d.settings import LoopSettings

# Settings only some methods read; every other training setting is read by all of them.
_TEACHER = ("consistency", "rampup", "ema_decay", "teacher_noise", "unlabeled_batch_size")
METHOD_SETTINGS: dict[str, tuple[str, ...]] = {
    "supervised": (),
    "mean_teacher": _TEACHER,
    "uamt": _TEACHER + ("uamt_passes",),
    "cps": ("consistency", "rampup", "unlabeled_batch_size"),
    "bcp": ("ema_decay", "bcp_pretrain", "bcp_box", "bcp_unlabeled_weight", "bcp_confidence"),
}
METHOD_SPECIFIC = frozenset(key for keys in METHOD_SETTINGS.values() for key in keys)
# Keys of config `ssl` that are not training settings: the method itself and the mask threshold used by
# prediction and evaluation.
NOT_TRAINING = ("method", "threshold")


@dataclass(frozen=True)
class TrainSettings(LoopSettings):
    """The training settings of SS(.): keys of config `ssl` (documented in the config schema, which also
    holds their defaults), those of every seg2d training (LoopSettings) and SS(.)'s own. Method-specific ones
    are None for methods that do not read them."""

    foreground_fraction: float  # share of each labeled batch from slices with tumor
    flip: bool  # left-right flips
    loss_in_liver: bool  # losses count inside the liver region only, where SS(.) predicts; BCP's teacher labels only it
    unlabeled_batch_size: int | None = None  # unlabeled slices per step (MT, UA-MT, CPS)
    consistency: float | None = None  # weight of the unlabeled loss after ramp-up (MT, UA-MT, CPS)
    rampup: float | None = None  # share of training over which that weight ramps up
    ema_decay: float | None = None
    teacher_noise: float | None = None  # sd of the teacher's input noise (MT, UA-MT)
    uamt_passes: int | None = None  # stochastic teacher passes for the uncertainty
    bcp_pretrain: float | None = None  # share of training spent on labeled copy-paste pre-training
    bcp_box: float | None = None  # side of the pasted box as a share of the slice side
    bcp_unlabeled_weight: float | None = None  # loss weight of pseudo-labeled pixels
    bcp_confidence: float | None = None  # pseudo-labeled pixels count where the teacher is at least this sure
    # Decay of an exponential moving average of the weights, which validation, the kept checkpoint and
    # prediction then use (None: the weights as trained). Not a config key yet: benchmarks/ssl_variants.py
    # measures it (issue 15: one training's variance is as large as the effects the loop is judged by).
    weight_average: float | None = None
    # Dice over the tumor channel only, pooled over the batch: background Dice is ~1 whatever the network
    # does, and per-slice Dice on slices without tumor is undefined noise. Fixed, not configurable.
    dice_include_background: bool = False
    batch_dice: bool = True

    @classmethod
    def from_config(cls, ssl: dict) -> "TrainSettings":
        """From config["ssl"], whole or as narrowed by `method_settings`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(ssl) - names - set(NOT_TRAINING)
        if unknown:
            raise KeyError(f"ssl settings unknown to the training loop: {sorted(unknown)}")
        return cls(**{key: tuple(value) if key == "features" else value for key, value in ssl.items() if key in names})


def method_settings(ssl: dict) -> dict:
    """The part of config `ssl` that a model trained with ssl["method"] depends on (the method and threshold
    included): what names an SSL run and reaches ssl_train."""
    method = ssl["method"]
    if method not in METHOD_SETTINGS:
        raise KeyError(f"unknown ssl.method {method!r}; known: {sorted(METHOD_SETTINGS)}")
    # A key left at null (an option switched off) does not enter the name, so adding an option renames nothing.
    return {
        key: value
        for key, value in ssl.items()
        if (key not in METHOD_SPECIFIC or key in METHOD_SETTINGS[method]) and value is not None
    }
