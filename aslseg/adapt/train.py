"""AN(.), the adaptation network: a MONAI BasicUNet that takes the CT slice plus prior channels (SAM's
Pseudo Label 2, optionally SAM's probability and Pseudo Label 1) and returns the refined tumor mask,
Pseudo Label 3. It is trained on the labeled slices only, on synthetic pseudo-labels (ground truth corrupted
the way SS(.) errs, then passed through SAM) with the ground truth as target, so it learns to undo SAM's and
SS's typical mistakes -- above all, to delete false-positive components that SAM cannot delete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from monai.losses import DiceCELoss

from aslseg.dice import pooled_dice
from aslseg.precision import Precision, resolve_bf16
from aslseg.seg2d.augment import Augmenter
from aslseg.seg2d.network import build_network, predict_probabilities
from aslseg.seg2d.sampling import ForegroundBatchSampler
from aslseg.seg2d.settings import LoopSettings
from aslseg.seg2d.training import TrainResult, fit

PRIOR_CHANNELS = ("pl2", "sam_probability", "pl1")  # what AN may see besides the image; pl2 always


@dataclass(frozen=True)
class AdaptSettings(LoopSettings):
    """The training keys of config `adapt` (the schema documents them and holds their defaults): those of every
    seg2d training (LoopSettings) and AN's own."""

    inputs: tuple[str, ...]  # prior channels, in this order; must start with "pl2"
    foreground_fraction: float  # share of each batch drawn from slices with tumor

    def __post_init__(self):
        inputs = list(self.inputs)
        if not inputs or inputs[0] != "pl2" or set(inputs) - set(PRIOR_CHANNELS) or len(set(inputs)) != len(inputs):
            raise ValueError(f"adapt.inputs must start with pl2 and name distinct channels of {list(PRIOR_CHANNELS)}; got {inputs}")

    @classmethod
    def from_config(cls, section: dict) -> "AdaptSettings":
        """From config["adapt"]; its keys that are not training settings (synthesis, enabled) are ignored."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = sorted(set(names) - set(section))
        if missing:
            raise KeyError(f"adapt settings missing: {missing}")
        return cls(**{key: tuple(section[key]) if key in ("inputs", "features") else section[key] for key in names})


@dataclass(frozen=True)
class AdaptData:
    """Slices with their prior channels and (for training and validation) the ground truth."""

    image: np.ndarray  # float32 (N, H, W)
    prior: np.ndarray  # float32 (N, C, H, W), channels as AdaptSettings.inputs
    target: np.ndarray | None = None  # uint8 (N, H, W)

    def stacked(self) -> np.ndarray:
        """(N, 1 + C, H, W): the network's input."""
        return np.concatenate([self.image[:, None], self.prior], axis=1).astype(np.float32)


@dataclass
class AdaptResult(TrainResult):
    val_dice_of_pl2: float | None = None  # pooled Dice of the PL2 AN starts from, on the same val examples


def refine(model: torch.nn.Module, data: AdaptData, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo Label 3 (uint8 mask) and its tumor probability for every slice of `data`."""
    probability = predict_probabilities(model, data.stacked())
    return (probability > threshold).astype(np.uint8), probability


def refine_cases(model: torch.nn.Module, adapt: dict, images: dict[int, np.ndarray], pl1: dict[int, np.ndarray],
                 pl2: dict[int, np.ndarray], sam_probability: dict[int, np.ndarray]) -> tuple[dict, dict]:
    """PL3 masks and probabilities of whole cases (case -> slices), AN fed the channels `adapt["inputs"]` names."""
    masks, probabilities = {}, {}
    for case in sorted(images):
        channels = {"pl2": pl2[case], "sam_probability": sam_probability[case], "pl1": pl1[case]}
        prior = np.stack([channels[name].astype(np.float32) for name in adapt["inputs"]], axis=1)
        masks[case], probabilities[case] = refine(model, AdaptData(images[case], prior), adapt["threshold"])
    return masks, probabilities


def train_adaptation(
    train: AdaptData, val: AdaptData, settings: AdaptSettings, seed: int, device: str = "cpu", progress: bool = True
) -> AdaptResult:
    """Train AN on synthetic (image, priors) -> ground truth pairs; keep the weights best on `val` (pooled Dice
    of PL3 on the val examples)."""
    if train.target is None or val.target is None:
        raise ValueError("AN trains and validates against ground truth; a target is missing")
    if train.prior.shape[1] != len(settings.inputs):
        raise ValueError(f"{train.prior.shape[1]} prior channels for adapt.inputs {list(settings.inputs)}")
    settings, precision = settings.on_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_network(settings.features, in_channels=1 + len(settings.inputs), bf16=settings.bf16).to(device)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    has_tumor = train.target.reshape(len(train.target), -1).any(axis=1)
    sampler = ForegroundBatchSampler(has_tumor, settings.batch_size, settings.foreground_fraction, rng)
    augment = Augmenter(settings.rotate_deg, settings.scale, settings.intensity, False, seed, device)

    def step(iteration: int):
        index = sampler()
        inputs, labels = augment(train.image[index], train.target[index], train.prior[index])
        return loss_function(model(inputs), labels), {}

    result = fit(model.parameters(), model, settings, step, lambda: pooled_dice(refine(model, val)[0], val.target),
                 "adapt_train", precision, progress=progress)
    return AdaptResult(**vars(result), val_dice_of_pl2=pooled_dice(val.prior[:, 0] > 0.5, val.target))


def load_adaptation(path: str, device: str = "cpu") -> tuple[torch.nn.Module, dict, Precision]:
    """AN saved by rule adapt_train, its config `adapt` section, and the precision it runs in on `device`
    (its adapt.bf16 setting resolved there: "auto" picks anew on the machine that refines)."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    adapt = checkpoint["adapt"]
    precision = resolve_bf16(adapt["bf16"], device)
    model = build_network(adapt["features"], in_channels=1 + len(adapt["inputs"]), bf16=precision.bf16).to(device)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, adapt, precision
