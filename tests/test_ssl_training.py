"""Stage I: foreground-aware sampling, augmentation, every SSL method's loop, prediction, checkpoints."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from aslseg.seg2d.augment import Augmenter
from aslseg.ssl.checkpoint import load_model, save_checkpoint
from aslseg.seg2d.network import build_network, predict_probabilities
from aslseg.seg2d.sampling import ForegroundBatchSampler, ShapeKeepingBatchSampler, StratifiedBatchSampler
from aslseg.select.expand import expand, initial_list
from aslseg.ssl.slices import SliceSet, load_round_slices, load_slices
from aslseg.config import default_config
from aslseg.prepared import Volume
from aslseg.ssl.settings import METHOD_SETTINGS, NOT_TRAINING, TrainSettings, method_settings
from aslseg.ssl.methods import METHODS
from aslseg.ssl.train import batch_sampler, train

TINY = (4, 4, 8, 8, 16, 4)


def settings(method: str = "supervised", **changes) -> TrainSettings:
    """The default ssl settings that `method` reads (only those: a method reading another one's setting
    fails on its None), with a tiny network and no augmentation, changed as given."""
    base = TrainSettings.from_config(method_settings({**default_config()["ssl"], "method": method}))
    defaults = dict(batch_size=4, lr=3e-3, weight_decay=0.0, features=TINY, rotate_deg=0, scale=0, intensity=0)
    return dataclasses.replace(base, **{**defaults, **changes})


def bright_square_slices(n=24, size=32, seed=0) -> SliceSet:
    """Noise with a bright square 'tumor' on every other slice, inside a 'liver' that leaves out a border of
    3 pixels."""
    rng = np.random.default_rng(seed)
    image = (0.4 + 0.05 * rng.standard_normal((n, size, size))).astype(np.float32)
    tumor = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(0, n, 2):
        r, c = rng.integers(4, size - 12, 2)
        tumor[i, r : r + 8, c : c + 8] = 1
    image[tumor == 1] += 0.4
    liver = np.zeros_like(tumor)
    liver[:, 3:-3, 3:-3] = 1
    return SliceSet(image, np.zeros(n, dtype=int), np.arange(n), tumor, liver=liver)


def test_sampler_draws_the_foreground_share():
    has_tumor = np.zeros(100, dtype=bool)
    has_tumor[:5] = True
    sampler = ForegroundBatchSampler(has_tumor, batch_size=8, foreground_fraction=0.5, rng=np.random.default_rng(0))
    batches = np.stack([sampler() for _ in range(200)])
    assert (has_tumor[batches].sum(axis=1) >= 4).all()


def test_rounds_keep_a_ground_truth_share_in_every_batch():
    """40 pseudo-labeled slices, all with tumor, beside 10 ground-truth ones of which 2 have tumor: half of
    every batch is ground truth, and half of that half has tumor."""
    is_truth = np.r_[np.ones(10, dtype=bool), np.zeros(40, dtype=bool)]
    has_tumor = np.r_[[True, True], np.zeros(8, dtype=bool), np.ones(40, dtype=bool)]
    sampler = StratifiedBatchSampler(has_tumor, is_truth, batch_size=8, foreground_fraction=0.5, truth_share=0.5,
                                     rng=np.random.default_rng(0))
    batches = np.stack([sampler() for _ in range(200)])
    assert (is_truth[batches].sum(axis=1) == 4).all()
    assert ((is_truth & has_tumor)[batches].sum(axis=1) >= 2).all()
    assert len(np.unique(batches[is_truth[batches]])) == 10  # every ground-truth slice is drawn
    # 30 ground-truth slices beside 10 pseudo-labeled ones: the ground truth keeps its own share, 3/4.
    few = StratifiedBatchSampler(has_tumor[:40], np.arange(40) < 30, 8, 0.5, 0.5, np.random.default_rng(0))
    assert all((few() < 30).sum() == 6 for _ in range(20))
    one_pool = StratifiedBatchSampler(has_tumor[:10], is_truth[:10], 8, 0.5, 0.5, np.random.default_rng(0))
    assert len(one_pool()) == 8  # no pseudo labels: the whole batch from the ground truth
    with pytest.raises(ValueError, match="share"):
        StratifiedBatchSampler(has_tumor, is_truth, 8, 0.5, 1.5, np.random.default_rng(0))


def test_with_negatives_a_round_keeps_round_0s_batch_shape():
    """10 ground-truth slices (2 with tumor) beside 40 accepted slices (all tumor) and 60 negatives: every
    batch has round 0's 4 tumor slots of 8, half of them ground truth; accepted slices fill only tumor slots,
    negatives only the others, and the ground truth keeps half of those too."""
    is_truth = np.r_[np.ones(10, dtype=bool), np.zeros(100, dtype=bool)]
    has_tumor = np.r_[[True, True], np.zeros(8, dtype=bool), np.ones(40, dtype=bool), np.zeros(60, dtype=bool)]
    sampler = ShapeKeepingBatchSampler(has_tumor, is_truth, batch_size=8, foreground_fraction=0.5, truth_share=0.5,
                                       rng=np.random.default_rng(0))
    batches = np.stack([sampler() for _ in range(200)])
    accepted, negative = ~is_truth & has_tumor, ~is_truth & ~has_tumor
    assert (has_tumor[batches].sum(axis=1) >= 4).all()
    assert ((is_truth & has_tumor)[batches].sum(axis=1) >= 2).all()
    assert (accepted[batches].sum(axis=1) == 2).all() and (negative[batches].sum(axis=1) == 2).all()
    assert (is_truth[batches].sum(axis=1) == 4).all()
    # the default sampler on the same slices: the pseudo half is drawn as a batch of its own, half of it tumor
    stratified = StratifiedBatchSampler(has_tumor, is_truth, 8, 0.5, 0.5, np.random.default_rng(0))
    assert np.mean([accepted[stratified()].sum() for _ in range(200)]) > 2.5
    # no negatives: the rest slots are the ground truth's alone
    only_accepted = ShapeKeepingBatchSampler(has_tumor[:50], is_truth[:50], 8, 0.5, 0.5, np.random.default_rng(0))
    assert all(accepted[:50][only_accepted()].sum() == 2 for _ in range(20))
    with pytest.raises(ValueError, match="share"):
        ShapeKeepingBatchSampler(has_tumor, is_truth, 8, 0.5, -0.1, np.random.default_rng(0))


def test_only_a_round_with_pseudo_labels_and_a_share_samples_by_source():
    slices = bright_square_slices(n=8)
    rng = np.random.default_rng(0)
    assert isinstance(batch_sampler(slices, settings(), 0.5, rng), ForegroundBatchSampler)  # round 0
    pseudo = dataclasses.replace(slices, pseudo=np.arange(8) >= 4)
    assert isinstance(batch_sampler(pseudo, settings(), 0.5, rng), StratifiedBatchSampler)
    assert isinstance(batch_sampler(pseudo, settings(), None, rng), ForegroundBatchSampler)  # loop.truth_share null
    negative = dataclasses.replace(pseudo, negative=np.arange(8) >= 6)
    assert isinstance(batch_sampler(negative, settings(), 0.5, rng), ShapeKeepingBatchSampler)
    assert isinstance(batch_sampler(negative, settings(), None, rng), ForegroundBatchSampler)


@pytest.mark.parametrize("width", [32, 48])  # square and not: the rotation acts in pixels either way
def test_augmentation_keeps_labels_binary_and_aligned(width):
    rng = np.random.default_rng(0)
    image = (0.4 + 0.05 * rng.standard_normal((6, 32, width))).astype(np.float32)
    tumor = np.zeros((6, 32, width), dtype=np.uint8)
    tumor[:, 10:20, 12:24] = 1
    image[tumor == 1] += 0.4
    augment = Augmenter(rotate_deg=15, scale=0.1, intensity=0.1, flip=True, seed=0)
    inputs, labels = augment(image, tumor, tumor[:, None].astype(np.float32))
    assert inputs.shape == (6, 2, 32, width) and labels.shape == (6, 1, 32, width) and labels.dtype == torch.long
    assert set(labels.unique().tolist()) <= {0, 1}
    # the bright square moves with its label, and the prior channel (nearest, like the label) with both
    assert inputs[:, :1][labels == 1].mean() > inputs[:, :1][labels == 0].mean() + 0.2
    assert torch.equal(inputs[:, 1:], labels.float())
    assert not torch.equal(labels[:, 0], torch.from_numpy(tumor).long())  # something moved


def test_augmentation_without_transforms_is_the_identity():
    slices = bright_square_slices()
    augment = Augmenter(rotate_deg=0, scale=0, intensity=0, flip=False, seed=0)
    for _ in range(3):
        inputs, labels = augment(slices.image[:6], slices.tumor[:6])
        assert torch.allclose(inputs[:, 0], torch.from_numpy(slices.image[:6]), atol=1e-6)
        assert torch.equal(labels[:, 0], torch.from_numpy(slices.tumor[:6]).long())
    images, no_labels = augment(slices.image[:6])  # unlabeled slices
    assert images.shape == (6, 1, 32, 32) and no_labels is None


def test_flips_mirror_left_right_and_nothing_else():
    slices = bright_square_slices()
    augment = Augmenter(rotate_deg=0, scale=0, intensity=0, flip=True, seed=0)
    labels = augment(slices.image, slices.tumor)[1][:, 0].numpy()
    flipped = [np.array_equal(out, truth[:, ::-1]) for out, truth in zip(labels, slices.tumor) if truth.any()]
    kept = [np.array_equal(out, truth) for out, truth in zip(labels, slices.tumor) if truth.any()]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_augmentation_is_seeded():
    slices = bright_square_slices()

    def run(seed):
        augment = Augmenter(rotate_deg=15, scale=0.1, intensity=0.1, flip=True, seed=seed)
        return [augment(slices.image[:6], slices.tumor[:6]) for _ in range(2)]

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0])


def test_supervised_training_learns_and_checkpoint_reloads(tmp_path):
    torch.set_num_threads(1)
    train_slices = bright_square_slices(seed=0)
    val_slices = bright_square_slices(n=8, seed=1)
    val = [Volume(0, val_slices.image, val_slices.tumor, (5.0, 1.0, 1.0), val_slices.liver)]
    result = train("supervised", train_slices, None, val, settings(iterations=120, val_every=40), seed=0,
                   progress=False)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.best_val_dice > 0.5
    path = tmp_path / "model.pt"
    torch.save(result.state_dict, path)
    model = build_network(TINY)
    model.load_state_dict(torch.load(path, weights_only=True))
    probabilities = predict_probabilities(model, val_slices.image)
    assert probabilities.shape == val_slices.image.shape and 0 <= probabilities.min() <= probabilities.max() <= 1


def test_weight_averaging_keeps_an_average_of_the_weights_and_changes_nothing_when_off():
    torch.set_num_threads(1)
    train_slices = bright_square_slices(seed=0)
    val_slices = bright_square_slices(n=8, seed=1)
    val = [Volume(0, val_slices.image, val_slices.tumor, (5.0, 1.0, 1.0), val_slices.liver)]
    short = dict(iterations=30, val_every=30)
    plain = train("supervised", train_slices, None, val, settings(**short), seed=0, progress=False)
    again = train("supervised", train_slices, None, val, settings(**short, weight_average=None), seed=0, progress=False)
    assert all(torch.equal(plain.state_dict[k], again.state_dict[k]) for k in plain.state_dict)
    # decay 0: the average is the last step's weights; 0.9 lags behind them
    last = train("supervised", train_slices, None, val, settings(**short, weight_average=0.0), seed=0, progress=False)
    assert all(torch.allclose(plain.state_dict[k], last.state_dict[k]) for k in plain.state_dict)
    averaged = train("supervised", train_slices, None, val, settings(**short, weight_average=0.9), seed=0, progress=False)
    assert not all(torch.allclose(plain.state_dict[k], averaged.state_dict[k]) for k in plain.state_dict)
    assert averaged.best_val_dice >= 0


def test_bf16_network_runs_in_bfloat16_and_shares_float32_weights(tmp_path):
    torch.manual_seed(0)
    full, half = build_network(TINY), build_network(TINY, bf16=True)
    assert full.state_dict().keys() == half.state_dict().keys()  # one checkpoint format for both
    half.load_state_dict(full.state_dict())
    assert all(p.dtype == torch.float32 for p in half.parameters())
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        exact, autocast = full(image), half(image)
    assert autocast.dtype == torch.float32  # losses and thresholds see float32 logits
    assert not torch.equal(exact, autocast)  # the convolutions really ran in bfloat16
    assert torch.allclose(exact, autocast, atol=0.05 * float(exact.abs().max()))
    path = tmp_path / "model.pt"
    save_checkpoint(path, half.state_dict(), {"features": list(TINY), "bf16": True})
    assert load_model(path)[0].bf16
    save_checkpoint(path, half.state_dict(), {"features": list(TINY)})  # trained before the setting existed
    assert not load_model(path)[0].bf16


def test_labels_are_read_only_for_the_cases_given(tmp_path):
    for case in (1, 2):
        np.savez(tmp_path / f"image-case-{case}.npz", image=np.zeros((3, 8, 8), np.float16))
        np.savez(tmp_path / f"label-case-{case}.npz", tumor=np.zeros((3, 8, 8), np.uint8))
    images = [tmp_path / "image-case-1.npz", tmp_path / "image-case-2.npz"]
    assert load_slices(images).tumor is None
    assert load_slices(images, [tmp_path / "label-case-2.npz", tmp_path / "label-case-1.npz"]).tumor.shape == (6, 8, 8)
    with pytest.raises(ValueError, match="exactly the cases"):
        load_slices(images, [tmp_path / "label-case-1.npz"])


def test_the_loss_in_the_liver_ignores_every_pixel_outside_it():
    """With a region, what the network outputs outside it changes no loss: SS(.) predicts inside the liver
    only, so there is nothing to learn there (ssl.loss_in_liver)."""
    from aslseg.ssl.methods import METHODS

    trainer = METHODS["supervised"](settings(bf16=False), "cpu")
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 2, 16, 16, generator=generator)
    label = (torch.rand(4, 1, 16, 16, generator=generator) > 0.8).long()
    region = torch.zeros(4, 1, 16, 16)
    region[..., 4:12, 4:12] = 1
    label = label * region.long()  # tumor lies inside the liver
    outside = logits + 5 * torch.randn(4, 2, 16, 16, generator=generator) * (1 - region)
    inside = logits + 5 * torch.randn(4, 2, 16, 16, generator=generator) * region
    loss = trainer.supervised_loss(logits, label, region)
    assert torch.isclose(trainer.supervised_loss(outside, label, region), loss)
    assert not torch.isclose(trainer.supervised_loss(inside, label, region), loss)
    assert not torch.isclose(trainer.supervised_loss(outside, label), trainer.supervised_loss(logits, label))


def test_bcp_teacher_labels_only_the_liver():
    """BCP's pseudo labels obey the liver region as every prediction of SS(.) does: a teacher that calls
    every pixel tumor teaches tumor inside the unlabeled slices' liver and background outside it."""
    from aslseg.ssl.methods import METHODS
    from aslseg.ssl.methods.base import Batch

    trainer = METHODS["bcp"](settings("bcp", bcp_pretrain=0.0, bf16=False), "cpu")
    labeled, unlabeled = bright_square_slices(n=4, seed=0), bright_square_slices(n=4, seed=1)
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)[:, None]  # noqa: E731
    seen = []
    trainer.mixed_loss = lambda logits, target, *rest: seen.append(target) or logits.sum() * 0
    trainer.loss(Batch(as_tensor(labeled.image), as_tensor(labeled.tumor).long(), as_tensor(labeled.liver)),
                 Batch(as_tensor(unlabeled.image), None, as_tensor(unlabeled.liver)), progress=0.5)
    trainer.teacher.forward = lambda x: torch.stack([torch.zeros_like(x[:, 0]), torch.ones_like(x[:, 0])], dim=1)
    seen.clear()
    trainer.loss(Batch(as_tensor(labeled.image), as_tensor(labeled.tumor).long(), as_tensor(labeled.liver)),
                 Batch(as_tensor(unlabeled.image), None, as_tensor(unlabeled.liver)), progress=0.5)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[3:-3, 3:-3] = False
    for target in seen:  # outside every liver (the border here) nothing is tumor, pseudo-labeled or not
        assert not target[..., border].any()
    assert seen[0].sum() > labeled.tumor[:2].sum()  # the teacher's all-tumor labels did arrive inside the liver


@pytest.mark.parametrize("confidence", [None, 0.9])
def test_bcp_counts_pseudo_labels_only_where_the_teacher_is_sure(confidence):
    """With bcp_confidence, a pseudo-labeled pixel enters the loss only where the teacher's probability of its
    label reaches it (a weak teacher's unsure specks are not taught back); without it, every liver pixel."""
    from aslseg.ssl.methods import METHODS
    from aslseg.ssl.methods.base import Batch

    trainer = METHODS["bcp"](settings("bcp", bcp_pretrain=0.0, bf16=False, bcp_confidence=confidence), "cpu")
    labeled, unlabeled = bright_square_slices(n=4, seed=0), bright_square_slices(n=4, seed=1)
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)[:, None]  # noqa: E731
    batches = (Batch(as_tensor(labeled.image), as_tensor(labeled.tumor).long(), as_tensor(labeled.liver)),
               Batch(as_tensor(unlabeled.image), None, as_tensor(unlabeled.liver)))
    seen = []
    trainer.mixed_loss = lambda logits, target, from_first, *weights_and_region: \
        seen.append((from_first, weights_and_region[-1])) or logits.sum() * 0
    trainer.loss(*batches, progress=0.5)  # creates the teacher
    margin = torch.zeros(1, 1, 32, 32)
    margin[..., :16] = 3.0  # left half: tumor at p = 0.95; right half: tumor at p = 0.6
    margin[..., 16:] = 0.4
    trainer.teacher.forward = lambda x: torch.cat([torch.zeros_like(x), margin.expand_as(x)], dim=1)
    seen.clear()
    trainer.loss(*batches, progress=0.5)
    from_unlabeled, region = seen[0]  # direction 1: the unlabeled slices outside the box, labeled ones inside
    pseudo_labeled = from_unlabeled.expand_as(region).bool()
    liver = as_tensor(unlabeled.liver[:2])
    sure = torch.zeros_like(liver)
    sure[..., :16] = 1
    expected = liver if confidence is None else liver * sure
    assert torch.equal(region[pseudo_labeled], expected[pseudo_labeled])
    assert region[pseudo_labeled].sum() > 0


@pytest.mark.parametrize("method", ["supervised", "mean_teacher", "uamt", "cps", "bcp"])
def test_every_method_learns_and_its_checkpoint_reloads(method, tmp_path):
    torch.set_num_threads(1)
    labeled = bright_square_slices(n=16, seed=0)
    unlabeled = bright_square_slices(n=16, seed=2)
    unlabeled = SliceSet(unlabeled.image, unlabeled.case_id, unlabeled.position, None, liver=unlabeled.liver)
    val_slices = bright_square_slices(n=8, seed=1)
    val = [Volume(0, val_slices.image, val_slices.tumor, (5.0, 1.0, 1.0), val_slices.liver)]
    method_specific = {"uamt_passes": 2, "rampup": 0.2} if method in ("mean_teacher", "uamt", "cps") else {}
    method_specific = {key: value for key, value in method_specific.items() if key in METHOD_SETTINGS[method]}
    tiny_run = settings(method, iterations=80, val_every=10, **method_specific)
    result = train(method, labeled, unlabeled, val, tiny_run, seed=0, progress=False)
    losses = [entry["loss"] for entry in result.history]
    if method == "bcp":  # pre-training and self-training losses are not comparable: compare within each
        losses = [entry["self_training"] for entry in result.history if "self_training" in entry]
    assert losses[-1] < losses[0], result.history
    assert result.best_val_dice > 0.25, result.history  # an untrained network scores ~0.1
    path = tmp_path / "model.pt"
    torch.save(result.state_dict, path)
    build_network(TINY).load_state_dict(torch.load(path, weights_only=True))


@pytest.mark.parametrize("method", ["supervised", "mean_teacher", "cps", "bcp"])
def test_a_warm_start_begins_from_the_given_weights(method):
    """With a learning rate of 0 nothing moves, so the kept model is the start itself; a teacher starts there
    too, and BCP goes straight to self-training (pre-training is for a network that knows nothing yet)."""
    torch.set_num_threads(1)
    labeled = bright_square_slices(n=8, seed=0)
    unlabeled = bright_square_slices(n=8, seed=2)
    unlabeled = SliceSet(unlabeled.image, unlabeled.case_id, unlabeled.position, None, liver=unlabeled.liver)
    val = [Volume(0, labeled.image, labeled.tumor, (5.0, 1.0, 1.0), labeled.liver)]
    torch.manual_seed(123)
    start = {key: value.clone() for key, value in build_network(TINY).state_dict().items()}
    still = settings(method, iterations=4, val_every=1, lr=0.0)
    result = train(method, labeled, unlabeled, val, still, seed=0, progress=False, start_from=start)
    for key, value in start.items():
        assert torch.equal(result.state_dict[key], value), key
    if method == "bcp":
        assert still.bcp_pretrain > 0 and all("self_training" in entry for entry in result.history)
        cold = train(method, labeled, unlabeled, val, still, seed=0, progress=False)
        assert "pretrain" in cold.history[0]
    if method == "mean_teacher":
        trainer = METHODS[method](still.on_device("cpu")[0], "cpu")
        trainer.start_from(start)
        for key, value in trainer.teacher.state_dict().items():
            assert torch.equal(value, start[key]), key


def test_ssl_methods_refuse_to_run_without_unlabeled_slices():
    with pytest.raises(ValueError, match="needs unlabeled slices"):
        train("mean_teacher", bright_square_slices(n=4), None, [], settings("mean_teacher", iterations=1), seed=0, progress=False)


def test_each_method_is_named_by_the_settings_it_reads():
    ssl = default_config()["ssl"]
    fields = {field.name for field in dataclasses.fields(TrainSettings)}
    assert set(ssl) - set(NOT_TRAINING) <= fields  # every config key reaches training (or is not a training key)
    supervised = method_settings({**ssl, "method": "supervised"})
    uamt = method_settings({**ssl, "method": "uamt"})
    assert "uamt_passes" not in supervised and "ema_decay" not in supervised and supervised["lr"] == ssl["lr"]
    assert uamt["uamt_passes"] == ssl["uamt_passes"] and "bcp_box" not in uamt
    assert "unlabeled_batch_size" not in method_settings({**ssl, "method": "bcp"})
    with pytest.raises(KeyError, match="unknown ssl.method"):
        method_settings({**ssl, "method": "fixmatch"})


def test_a_rounds_labeled_list_moves_accepted_slices_from_unlabeled_to_labeled(tmp_path):
    """Round >= 1: ground-truth volumes whole, accepted slices with their pseudo label from the PL3 file the list
    names, every other slice of an unlabeled volume unlabeled; no unlabeled volume's label file is read."""
    rng = np.random.default_rng(0)
    for case in (1, 2, 3):
        np.savez(tmp_path / f"case-{case}.npz", image=rng.random((4, 8, 8), dtype=np.float32))
    (tmp_path / "labels").mkdir()
    np.savez(tmp_path / "labels/case-1.npz", tumor=np.ones((4, 8, 8), dtype=np.uint8))
    pseudo = np.zeros((4, 8, 8), dtype=np.uint8)
    pseudo[2, 1:3, 1:3] = 1
    np.savez(tmp_path / "pl3.npz", mask_2=pseudo, probability_2=pseudo.astype(np.float16))
    listed = initial_list({1: 4}, {1: str(tmp_path / "labels/case-1.npz")})
    listed = expand(listed, pd.DataFrame({"case": [2, 2, 3], "position": [2, 3, 0], "score": [0.9, 0.95, 0.1],
                                          "accepted": [True, True, False]}),
                    round_index=0, pl3_file_of_case={2: str(tmp_path / "pl3.npz")}, forbidden_cases=set())
    images = [tmp_path / f"case-{case}.npz" for case in (1, 2, 3)]
    labeled, unlabeled = load_round_slices(listed, images, unlabeled_cases=[2, 3])
    assert list(zip(labeled.case_id, labeled.position)) == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3)]
    assert labeled.tumor[:4].all() and labeled.tumor[4].sum() == 4 and not labeled.tumor[5].any()
    assert labeled.pseudo.tolist() == [False] * 4 + [True] * 2
    assert list(zip(unlabeled.case_id, unlabeled.position)) == [(2, 0), (2, 1), (3, 0), (3, 1), (3, 2), (3, 3)]
    assert unlabeled.tumor is None
    with np.load(tmp_path / "case-2.npz") as case:
        assert np.array_equal(labeled.image[4], case["image"][2]) and np.array_equal(unlabeled.image[0], case["image"][0])
    with pytest.raises(ValueError, match="no image file"):
        load_round_slices(listed, images[:2], unlabeled_cases=[2, 3])


def test_negatives_load_as_tumor_free_pseudo_labels(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "case-2.npz", image=rng.random((4, 8, 8), dtype=np.float32))
    final = np.zeros((4, 8, 8), dtype=np.uint8)
    final[1, :2, :2] = 1
    np.savez(tmp_path / "pl3.npz", mask_2=final)
    listed = pd.DataFrame({"case": [2, 2, 2], "position": [0, 1, 3], "source": ["negative", "pseudo", "negative"],
                           "round_accepted": [0, 0, 0], "score": [1.0, 0.9, 0.4],
                           "label_file": [str(tmp_path / "pl3.npz")] * 3})
    labeled, unlabeled = load_round_slices(listed, [tmp_path / "case-2.npz"], unlabeled_cases=[2])
    assert labeled.pseudo.tolist() == [True] * 3 and labeled.negative.tolist() == [True, False, True]
    assert labeled.has_tumor().tolist() == [False, True, False] and unlabeled.position.tolist() == [2]
    listed.loc[1, "source"] = "negative"  # a negative whose label has tumor: the list and the file disagree
    with pytest.raises(ValueError, match=r"tumor-free slices .* has tumor: \[1\]"):
        load_round_slices(listed, [tmp_path / "case-2.npz"], unlabeled_cases=[2])


def test_each_accepted_slice_takes_its_label_from_the_file_its_row_names(tmp_path):
    """From round 2 on one case has slices accepted in different rounds, whose PL3 files both hold the whole
    case: a slice's label must come from its own round's file, not from whichever file was read last."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "case-2.npz", image=rng.random((4, 8, 8), dtype=np.float32))
    round_0, round_1 = np.zeros((4, 8, 8), dtype=np.uint8), np.zeros((4, 8, 8), dtype=np.uint8)
    round_0[1, :2, :2] = 1  # accepted in round 0: 4 pixels
    round_1[3, :3, :3] = 1  # accepted in round 1: 9 pixels (its round-0 label of slice 3 is empty)
    # file names that sort against the rounds (as results/loop/... sorts before results/ssl/...)
    np.savez(tmp_path / "b_round0.npz", mask_2=round_0)
    np.savez(tmp_path / "a_round1.npz", mask_2=round_1)
    listed = pd.DataFrame({"case": [2, 2], "position": [1, 3], "source": ["pseudo", "pseudo"], "round_accepted": [0, 1],
                           "score": [0.9, 0.9], "label_file": [str(tmp_path / "b_round0.npz"), str(tmp_path / "a_round1.npz")]})
    labeled, unlabeled = load_round_slices(listed, [tmp_path / "case-2.npz"], unlabeled_cases=[2])
    sums = {int(position): int(mask.sum()) for position, mask in zip(labeled.position, labeled.tumor)}
    assert sums == {1: 4, 3: 9}
    assert sorted(unlabeled.position.tolist()) == [0, 2]


def test_predictions_stay_inside_the_liver_region():
    model = build_network((4, 4, 8, 8, 16, 4))
    images = np.random.default_rng(0).random((3, 32, 32), dtype=np.float32)
    region = np.zeros((3, 32, 32), dtype=np.uint8)
    region[:, 8:24, 8:24] = 1
    free, kept = predict_probabilities(model, images), predict_probabilities(model, images, region=region)
    assert (kept[region == 0] == 0).all() and np.array_equal(kept[region == 1], free[region == 1])
    with pytest.raises(ValueError, match="region"):
        predict_probabilities(model, images, region=region[:2])
