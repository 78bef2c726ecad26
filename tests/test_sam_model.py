"""MS(.): the shipped LiteMedSAM weights, embedding once, batched decoding, bf16, the segment_anything
backend, and checkpoint checks at parse time. Real weights throughout; one encoder pass per slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import sam_model_registry

from aslseg.sam.model import SamCheckpointError, check_checkpoint, litemedsam_asset, load_sam

torch.set_num_threads(1)
SIZE = 128


def ct_like_slice(seed: int = 0, center=(55, 70), radius=10) -> tuple[np.ndarray, np.ndarray]:
    """A liver disk (0.55 in window units) on darker body, a darker round tumor (0.35), mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    image = np.full((SIZE, SIZE), 0.1, dtype=np.float32)
    image[((yy - 64) / 45) ** 2 + ((xx - 60) / 50) ** 2 < 1] = 0.55
    tumor = (yy - center[0]) ** 2 + (xx - center[1]) ** 2 < radius**2
    image[tumor] = 0.35
    return np.clip(image + 0.03 * rng.standard_normal(image.shape), 0, 1).astype(np.float32), tumor


def box_around(mask: np.ndarray, margin: int = 3) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.min() - margin, rows.min() - margin, cols.max() + margin, rows.max() + margin], np.float32)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def lite():
    return load_sam()


@pytest.fixture(scope="module")
def slices():
    """Two slices with tumors in different places."""
    first, second = ct_like_slice(0), ct_like_slice(1, center=(75, 45), radius=8)
    return np.stack([first[0], second[0]]), np.stack([first[1], second[1]])


@pytest.fixture(scope="module")
def embedded(lite, slices):
    """fp32 embeddings of both slices (one encoder call), and the bf16 embedding of the first."""
    before = lite.encoder_calls
    fp32 = lite.embed(slices[0], bf16=False, batch_size=2)
    calls = lite.encoder_calls - before
    bf16 = lite.embed(slices[0][:1], bf16=True)
    return fp32, bf16, calls


def test_shipped_weights_load_offline_and_strictly(lite, tmp_path):
    asset = check_checkpoint()
    assert asset == litemedsam_asset() and asset.stat().st_size == 39_370_479
    assert lite.backend == "litemedsam" and lite.input_size == 256 and not lite.sam.training
    assert not any(p.requires_grad for p in lite.sam.image_encoder.parameters())
    # A site's own LiteMedSAM state dict is accepted too.
    own = tmp_path / "my_lite_medsam.pth"
    torch.save(lite.sam.state_dict(), own)
    assert check_checkpoint("litemedsam", None, own) == own
    # The config's model_type is for segment_anything; litemedsam has one architecture and ignores it.
    assert check_checkpoint("litemedsam", "vit_b", None) == asset


def test_embed_counts_images_and_returns_float32(embedded):
    fp32, bf16, calls = embedded
    assert calls == 2
    assert fp32.shape == (2, 256, 64, 64) and fp32.dtype == torch.float32
    assert bf16.shape == (1, 256, 64, 64) and bf16.dtype == torch.float32


def test_embed_refuses_non_square(lite):
    with pytest.raises(ValueError, match="square"):
        lite.embed(np.zeros((1, 64, 32), np.float32))


def test_box_prompt_segments_the_tumor(lite, slices, embedded):
    images, tumors = slices
    fp32, _, _ = embedded
    boxes = np.stack([box_around(t) for t in tumors])
    with torch.no_grad():
        logits, iou = lite.decode(fp32, boxes=boxes, out_size=SIZE)
    assert logits.shape == (2, SIZE, SIZE) and iou.shape == (2,)
    for mask, tumor in zip((logits > 0).numpy(), tumors):
        assert dice(mask, tumor) > 0.9


def test_batched_decode_equals_one_image_at_a_time(lite, slices, embedded):
    """N images with one prompt each, all in one pass and in chunks, against decoding one image at a time
    and against upstream MaskDecoder.forward."""
    _, tumors = slices
    fp32, bf16, _ = embedded
    embeddings = torch.cat([fp32, bf16])
    boxes = np.stack([box_around(tumors[0]), box_around(tumors[1]), box_around(tumors[0], 6)])
    points = np.array([[[70, 55], [20, 20]], [[45, 75], [45, 70]], [[68, 57], [100, 100]]], np.float32)
    labels = np.array([[1, 0], [1, 1], [1, 0]])
    sam = lite.sam
    with torch.no_grad():
        batched, batched_iou = lite.decode(embeddings, boxes, points, labels, out_size=SIZE)
        lite.decode_chunk, default_chunk = 2, lite.decode_chunk
        try:
            chunked, chunked_iou = lite.decode(embeddings, boxes, points, labels, out_size=SIZE)
        finally:
            lite.decode_chunk = default_chunk
        assert torch.allclose(batched, chunked, atol=1e-4) and torch.allclose(batched_iou, chunked_iou, atol=1e-5)
        for i in range(3):
            one = slice(i, i + 1)
            single, single_iou = lite.decode(embeddings[one], boxes[one], points[one], labels[one], out_size=SIZE)
            assert torch.allclose(batched[i], single[0], atol=1e-4)
            assert torch.allclose(batched_iou[i], single_iou[0], atol=1e-5)
            # Upstream at the input size, 256 = 2 x 128: pixel x's centre x + 0.5 lies at 2x + 1, which is
            # 2x + 0.5 before the prompt encoder adds its half pixel.
            sparse, dense = sam.prompt_encoder(
                points=(torch.as_tensor(points[one] * 2 + 0.5), torch.as_tensor(labels[one])),
                boxes=torch.as_tensor(boxes[one] * 2 + 0.5),
                masks=None,
            )
            low, up_iou = sam.mask_decoder(embeddings[one], sam.prompt_encoder.get_dense_pe(), sparse, dense, False)
            upstream = torch.nn.functional.interpolate(low, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
            assert torch.allclose(batched[i], upstream[0, 0], atol=1e-4)
            assert torch.allclose(batched_iou[i], up_iou[0, 0], atol=1e-5)


def test_decode_keeps_gradients(lite, embedded):
    params = lite.trainable_parameters(prompt_encoder=True)
    try:
        logits, iou = lite.decode(embedded[0][:1], boxes=np.array([[50, 40, 90, 70]], np.float32), out_size=SIZE)
        (logits.mean() + iou.sum()).backward()
        decoder = lite.sam.mask_decoder
        # Single-mask output: only the first mask token's hypernetwork is used, as upstream.
        used = [decoder.transformer, decoder.output_upscaling, decoder.output_hypernetworks_mlps[0],
                decoder.iou_prediction_head]
        assert all(p.grad is not None for part in used for p in part.parameters())
        assert lite.sam.prompt_encoder.point_embeddings[2].weight.grad is not None  # a box corner
    finally:
        for p in params:
            p.grad = None


def test_bf16_embedding_stays_close(lite, slices, embedded):
    _, tumors = slices
    fp32, bf16, _ = embedded
    relative = ((bf16[0] - fp32[0]).norm() / fp32[0].norm()).item()
    assert relative < 0.1
    with torch.no_grad():
        boxes = np.stack([box_around(tumors[0])] * 2)
        logits, _ = lite.decode(torch.cat([fp32[:1], bf16]), boxes=boxes, out_size=SIZE)
    full, half = (logits > 0).numpy()
    assert abs(dice(full, tumors[0]) - dice(half, tumors[0])) < 0.02


def test_bf16_decoder_gives_the_same_masks_in_float32(lite, slices, embedded):
    _, tumors = slices
    fp32, _, _ = embedded
    boxes = np.stack([box_around(tumors[0]), box_around(tumors[1])])
    try:
        with torch.no_grad():
            exact_logits, exact_iou = lite.decode(fp32, boxes=boxes, out_size=SIZE)
            lite.decoder_bf16 = True
            logits, iou = lite.decode(fp32, boxes=boxes, out_size=SIZE)
    finally:
        lite.decoder_bf16 = False
    assert logits.dtype == iou.dtype == torch.float32
    assert not torch.equal(logits, exact_logits)  # the decoder really ran in bfloat16
    assert torch.allclose(iou, exact_iou, atol=0.03)
    for exact, half, tumor in zip((exact_logits > 0).numpy(), (logits > 0).numpy(), tumors):
        assert dice(exact, half) > 0.95 and abs(dice(exact, tumor) - dice(half, tumor)) < 0.02


def test_decoder_state_holds_only_decoder_and_prompt_encoder(lite):
    state = lite.decoder_state_dict()
    assert {name.split(".")[0] for name in state} == {"mask_decoder", "prompt_encoder"}
    assert len(state) == 120 + 17
    lite.load_decoder_state(state)
    with pytest.raises(ValueError, match="not a decoder state"):
        lite.load_decoder_state({k: v for k, v in state.items() if k.startswith("mask_decoder.")})


@pytest.fixture(scope="module")
def vit_b_checkpoint(tmp_path_factory):
    """A vit_b state dict with random weights (fp16 to halve the file; loading casts to the model's fp32)."""
    path = tmp_path_factory.mktemp("sam") / "random_vit_b.pth"
    torch.manual_seed(0)
    torch.save({k: v.half() for k, v in sam_model_registry["vit_b"](checkpoint=None).state_dict().items()}, path)
    return path


def test_segment_anything_vit_b_embeds_and_decodes_at_1024(vit_b_checkpoint):
    model = load_sam("segment_anything", "vit_b", vit_b_checkpoint)
    assert model.input_size == 1024
    image, tumor = ct_like_slice(0)
    embedding = model.embed(image[None, ::2, ::2], bf16=True)  # 64 x 64, resized to 1024
    assert model.encoder_calls == 1 and embedding.shape == (1, 256, 64, 64)
    with torch.no_grad():
        logits, iou = model.decode(embedding, boxes=box_around(tumor)[None] / 2, out_size=64)
    assert logits.shape == (1, 64, 64) and iou.shape == (1,)
    assert torch.isfinite(logits).all() and torch.isfinite(iou).all()


def test_input_norm_sets_what_the_encoder_sees(slices):
    """auto: LiteMedSAM takes [0, 1] as is; "sam" is SAM's 0..255 ImageNet normalisation, which changes the
    encoder's input and so its embedding."""
    unit, sam = load_sam(), load_sam(input_norm="sam")
    assert unit.sam.pixel_mean.flatten().tolist() == [0, 0, 0] and unit.sam.pixel_std.flatten().tolist() == [1, 1, 1]
    assert sam.sam.pixel_mean.flatten().tolist() == pytest.approx([123.675, 116.28, 103.53])
    image = slices[0][:1]
    assert not torch.allclose(unit.embed(image), sam.embed(image))
    with pytest.raises(ValueError, match="unknown input_norm"):
        load_sam(input_norm="imagenet")


def test_check_checkpoint_errors_name_the_file(tmp_path, vit_b_checkpoint):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(SamCheckpointError, match=f"{missing}.*no such file"):
        check_checkpoint("litemedsam", None, missing)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint\n" * 10)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(litemedsam_asset().read_bytes()[:100_000])
    for path in (garbage, truncated):
        with pytest.raises(SamCheckpointError, match=f"{path}.*: not loadable"):
            check_checkpoint("litemedsam", None, path)

    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, wrapped)
    with pytest.raises(SamCheckpointError, match=f"{wrapped}.*not a state dict"):
        check_checkpoint("litemedsam", None, wrapped)

    with pytest.raises(SamCheckpointError) as declared_vit_l:
        check_checkpoint("segment_anything", "vit_l", vit_b_checkpoint)
    message = str(declared_vit_l.value)
    assert str(vit_b_checkpoint) in message and "\n" not in message
    assert "missing keys" in message and "shape mismatches" in message
    assert "looks like a segment_anything vit_b" in message

    with pytest.raises(SamCheckpointError, match="unexpected keys.*looks like a LiteMedSAM"):
        check_checkpoint("segment_anything", "vit_b", litemedsam_asset())
    with pytest.raises(SamCheckpointError, match="needs a checkpoint"):
        check_checkpoint("segment_anything", "vit_b", None)
    with pytest.raises(ValueError, match="model_type"):
        check_checkpoint("segment_anything", "vit_x", vit_b_checkpoint)


def test_the_encoder_is_compiled_only_where_it_pays(monkeypatch, lite):
    from aslseg.sam.model import COMPILE_MIN_SLICES

    monkeypatch.delenv("ASLSEG_COMPILE", raising=False)
    assert lite.compile_encoder(COMPILE_MIN_SLICES, bf16=True).startswith("eager")
    assert lite.compile_encoder(COMPILE_MIN_SLICES - 1, bf16=False).startswith("eager")
    monkeypatch.setenv("ASLSEG_COMPILE", "off")
    assert lite.compile_encoder(COMPILE_MIN_SLICES, bf16=False).startswith("eager")
    assert lite._compiled_encoder is None


def test_the_compiled_encoder_embeds_as_the_eager_one(monkeypatch, slices):
    """float32 on the CPU, three slices in batches of two: the last batch is padded to the compiled shape."""
    from aslseg.sam.model import COMPILE_MIN_SLICES

    monkeypatch.delenv("ASLSEG_COMPILE", raising=False)
    model = load_sam()
    images = np.concatenate([slices[0], slices[0][:1]])
    eager = model.embed(images, batch_size=2)
    assert model.compile_encoder(COMPILE_MIN_SLICES, bf16=False).startswith("compiled")
    compiled = model.embed(images, batch_size=2)
    assert model._compiled_encoder is not None  # compiled, not fallen back to eager
    assert compiled.shape == eager.shape == (3, 256, 64, 64)
    assert ((compiled - eager).norm() / eager.norm()).item() < 1e-4
