"""AN(.): learns to delete false-positive blobs and keep true tumors given image + PL2; reloads."""

import numpy as np
import pytest
import torch

from aslseg.adapt.judge import judge_adaptation
from aslseg.adapt.train import AdaptData, AdaptSettings, refine, train_adaptation
from aslseg.dice import pooled_dice
from aslseg.seg2d.network import build_network


def settings(**changes) -> AdaptSettings:
    base = dict(inputs=("pl2",), iterations=150, batch_size=4, lr=3e-3, weight_decay=0.0, features=(4, 4, 8, 8, 16, 4),
                foreground_fraction=0.5, val_every=50, rotate_deg=0, scale=0, intensity=0, bf16=True)
    return AdaptSettings(**{**base, **changes})


def synthetic(n: int, seed: int, size: int = 32) -> AdaptData:
    """Bright squares are tumors; PL2 marks each tumor plus a false blob on plain background, which the image
    shows to be no tumor: AN must learn to keep the first and drop the second."""
    rng = np.random.default_rng(seed)
    image = (0.4 + 0.03 * rng.standard_normal((n, size, size))).astype(np.float32)
    target = np.zeros((n, size, size), dtype=np.uint8)
    prior = np.zeros((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        r, c = rng.integers(2, size // 2 - 8, 2)
        target[i, r : r + 7, c : c + 7] = 1
        fr, fc = rng.integers(size // 2 + 1, size - 8, 2)
        prior[i, 0, fr : fr + 6, fc : fc + 6] = 1
    image[target == 1] += 0.35
    prior[:, 0] = np.maximum(prior[:, 0], target)
    return AdaptData(image, prior, target)


def test_an_learns_to_remove_false_positives_and_reloads(tmp_path):
    torch.set_num_threads(1)
    train, val = synthetic(16, seed=0), synthetic(6, seed=1)
    result = train_adaptation(train, val, settings(), seed=0, progress=False)
    assert result.val_dice_of_pl2 < 0.75  # PL2 carries one false blob per slice
    assert result.best_val_dice > result.val_dice_of_pl2 + 0.1
    path = tmp_path / "an.pt"
    torch.save(result.state_dict, path)
    model = build_network((4, 4, 8, 8, 16, 4), in_channels=2)
    model.load_state_dict(torch.load(path, weights_only=True))
    pl3, probability = refine(model, val)
    assert pl3.shape == val.target.shape and pooled_dice(pl3, val.target) == pytest.approx(result.best_val_dice)
    again = train_adaptation(train, val, settings(), seed=0, progress=False)
    assert again.best_val_dice == result.best_val_dice  # seeded


def test_pooled_dice_rules():
    a = np.zeros((2, 4, 4), dtype=np.uint8)
    assert pooled_dice(a, a) == 1.0
    b = a.copy()
    b[0, :2, :2] = 1
    assert pooled_dice(a, b) == 0.0 and pooled_dice(b, b) == 1.0


def test_inputs_must_start_with_pl2_and_be_known():
    with pytest.raises(ValueError, match="must start with pl2"):
        settings(inputs=("pl1",))
    with pytest.raises(ValueError, match="must start with pl2"):
        settings(inputs=("pl2", "sam_logits"))
    with pytest.raises(KeyError, match="missing"):
        AdaptSettings.from_config({"inputs": ["pl2"]})


def test_an_is_used_in_a_round_only_where_it_beats_pl2_on_the_val_volumes():
    truth = {3: np.zeros((2, 8, 8), dtype=np.uint8), 5: np.zeros((1, 8, 8), dtype=np.uint8)}
    truth[3][0, 2:5, 2:5] = 1
    pl2 = {case: mask.copy() for case, mask in truth.items()}
    pl2[5][0, 6:8, 6:8] = 1  # a false positive that AN removes
    better = {case: mask.copy() for case, mask in truth.items()}
    judgement = judge_adaptation(pl2, better, truth)
    assert judgement["use_an"] and judgement["an_val_dice"] == 1.0 and judgement["pl2_val_dice"] < 1.0
    assert judgement["val_cases"] == [3, 5] and judgement["val_slices"] == 3
    worse = {case: np.ones_like(mask) for case, mask in truth.items()}
    assert not judge_adaptation(pl2, worse, truth)["use_an"]
    assert not judge_adaptation(pl2, pl2, truth)["use_an"]  # a tie keeps PL2
    with pytest.raises(ValueError, match="val cases"):
        judge_adaptation(pl2, {3: better[3]}, truth)
    with pytest.raises(ValueError, match="shape"):
        judge_adaptation(pl2, {3: better[3], 5: np.zeros((2, 8, 8))}, truth)
