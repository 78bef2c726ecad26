"""Fine-tuning MS(.)'s decoder on cached embeddings: point prompts learned, loss down, seeded, the decoder
state round-trips, and no tumor is an error. Real LiteMedSAM weights; each slice embedded once per module."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from aslseg.sam.finetune import FinetuneSettings, finetune, prompt_dice
from aslseg.sam.model import load_sam
from aslseg.sam.prompts import PromptShape

torch.set_num_threads(1)
SIZE = 128
MIN_PIXELS = 10
SHAPE = PromptShape(box_margin=3, min_component_pixels=MIN_PIXELS, multipoint_n=3)


def multifocal_slice(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A liver ellipse (0.55 in window units) with 1-3 separate darker round tumors (0.35), mild noise."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    image = np.full((SIZE, SIZE), 0.1, dtype=np.float32)
    liver = ((yy - 64) / rng.uniform(36, 44)) ** 2 + ((xx - 62) / rng.uniform(44, 52)) ** 2 < 1
    image[liver] = 0.55
    tumor = np.zeros((SIZE, SIZE), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        for _attempt in range(100):  # inside the liver, apart from the other tumors
            cy, cx, r = rng.uniform(35, 93), rng.uniform(30, 95), rng.uniform(6, 11)
            distance = np.hypot(yy - cy, xx - cx)
            if liver[distance < r + 4].all() and not tumor[distance < r + 4].any():
                tumor |= distance < r
                break
    image[tumor] = 0.35
    return np.clip(image + 0.03 * rng.standard_normal(image.shape), 0, 1).astype(np.float32), tumor.astype(np.uint8)


def settings(**changes) -> FinetuneSettings:
    base = dict(
        iterations=8,
        batch_size=4,
        lr=4e-4,
        weight_decay=0.01,
        box_jitter=0.1,
        prompts=("point",),
        train_prompt_encoder=False,
        iou_loss_weight=1.0,
        shape=SHAPE,
    )
    return FinetuneSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def data():
    """Six slices, embedded once (bf16 autocast) and kept in fp16 as the embedding cache stores them."""
    rng = np.random.default_rng(0)
    images, masks = map(np.stack, zip(*(multifocal_slice(rng) for _ in range(6))))
    model = load_sam()
    embeddings = model.embed(images, bf16=True).half().numpy()
    return model, embeddings, masks


def point_dice(model, embeddings, masks) -> dict:
    return prompt_dice(model, embeddings, masks, "point", SHAPE)


@pytest.fixture(scope="module")
def tuned(data):
    """Zero-shot point Dice, a short point-prompt fine-tune, then the fine-tuned Dice; the model is left
    with its zero-shot decoder."""
    model, embeddings, masks = data
    initial = model.decoder_state_dict()
    zero_shot = point_dice(model, embeddings, masks)
    box_zero_shot = prompt_dice(model, embeddings, masks, "box", SHAPE)
    result = finetune(model, embeddings, masks, settings(), seed=0, progress=False)
    after = point_dice(model, embeddings, masks)
    model.load_decoder_state(initial)
    return {"zero_shot": zero_shot, "box_zero_shot": box_zero_shot, "result": result, "tuned": after}


def test_settings_from_config():
    section = {key: value for key, value in dataclasses.asdict(settings()).items() if key != "shape"}
    tuned = FinetuneSettings.from_config({**section, "prompts": ["box", "point"]}, SHAPE)
    assert tuned.prompts == ("box", "point") and tuned.shape == SHAPE
    with pytest.raises(KeyError, match="unknown"):
        FinetuneSettings.from_config({**section, "epochs": 3}, SHAPE)
    with pytest.raises(KeyError, match="missing"):
        FinetuneSettings.from_config({key: value for key, value in section.items() if key != "lr"}, SHAPE)
    with pytest.raises(ValueError, match="prompts"):
        settings(prompts=("scribble",))


def test_point_prompts_are_learned(tuned):
    zero_shot, after = tuned["zero_shot"], tuned["tuned"]
    print(f"\npoint Dice zero-shot {zero_shot['dice']:.3f} -> fine-tuned {after['dice']:.3f}; "
          f"box zero-shot {tuned['box_zero_shot']['dice']:.3f}; "
          f"{tuned['result'].seconds / len(tuned['result'].history):.2f} s per step (batch 4)")
    assert zero_shot["components"] == after["components"] >= 8
    assert zero_shot["dice"] < 0.3  # LiteMedSAM was trained with boxes and ignores a point zero-shot
    assert after["dice"] > zero_shot["dice"] + 0.4
    assert tuned["box_zero_shot"]["dice"] > 0.9


def test_loss_decreases(tuned):
    losses = [entry["loss"] for entry in tuned["result"].history]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_decoder_state_round_trips_into_a_fresh_model(data, tuned, tmp_path):
    model, embeddings, masks = data
    path = tmp_path / "decoder.pt"
    torch.save(tuned["result"].decoder_state, path)
    fresh = load_sam()
    fresh.load_decoder_state(torch.load(path, weights_only=True))
    assert fresh.encoder_calls == 0
    assert point_dice(fresh, embeddings, masks)["dice"] == pytest.approx(tuned["tuned"]["dice"], abs=1e-9)


def test_same_seed_same_run(data):
    """Every prompt type, box jitter and the prompt encoder trained: two runs from the same start agree."""
    model, embeddings, masks = data
    initial = model.decoder_state_dict()
    mixed = settings(iterations=2, prompts=("box", "point", "multipoint", "box+point"), train_prompt_encoder=True)
    runs = []
    for _ in range(2):
        model.load_decoder_state(initial)
        runs.append(finetune(model, embeddings, masks, mixed, seed=3, progress=False))
    model.load_decoder_state(initial)
    assert [h["loss"] for h in runs[0].history] == [h["loss"] for h in runs[1].history]
    assert all(torch.equal(runs[0].decoder_state[k], runs[1].decoder_state[k]) for k in initial)
    positive_point = "prompt_encoder.point_embeddings.1.weight"
    assert not torch.equal(runs[0].decoder_state[positive_point], initial[positive_point])


def test_no_tumor_is_an_error(data):
    model, embeddings, _ = data
    with pytest.raises(ValueError, match="no tumor component"):
        finetune(model, embeddings[:2], np.zeros((2, SIZE, SIZE), np.uint8), settings(), seed=0, progress=False)
