"""Per-step costs of MS(.) on this machine: image-encoder seconds per slice (fp32 and bf16 autocast, batch 1
and 4; fp32 compiled, as sam_embed runs it on a CPU without native bf16), decoder milliseconds per prompt and decoder fine-tuning seconds per step (fp32 and bf16 autocast, as
sam.bf16 sets them). Medians of repeats.

    .venv/bin/python benchmarks/sam_costs.py [--threads 2] [--repeats 5] [--prepared results/data/prepared/images]
                                             [--glibc-defaults]

Memory is allocated as in the workflow's jobs (aslseg/malloc.py); --glibc-defaults leaves glibc's defaults.

Slices come from a prepared case when one exists (else a synthetic one), so the encoder sees real sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from aslseg.malloc import keep_freed_memory
from aslseg.precision import cpu_report
from aslseg.sam.finetune import FinetuneSettings, finetune
from aslseg.sam.model import COMPILE_MIN_SLICES, load_sam
from aslseg.sam.prompts import PromptShape


def median_seconds(step, repeats: int) -> float:
    step()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def slices(prepared: Path, n: int) -> np.ndarray:
    files = sorted(prepared.glob("case-*.npz"))
    if files:
        with np.load(files[0]) as case:
            image = case["image"].astype(np.float32)
        return np.resize(image, (n, *image.shape[1:]))  # the case's first n slices (repeated if it has fewer)
    return np.random.default_rng(0).random((n, 128, 128), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prepared", type=Path, default=Path("results/data/prepared/images"))
    parser.add_argument("--glibc-defaults", action="store_true", help="do not apply aslseg.malloc's settings")
    args = parser.parse_args()
    if not args.glibc_defaults:
        keep_freed_memory()
    torch.set_num_threads(args.threads)
    print(cpu_report())
    model = load_sam()
    images = slices(args.prepared, 8)
    size = images.shape[-1]
    print(f"LiteMedSAM, {args.threads} threads, slices {size}x{size} -> {model.input_size}, "
          f"{'glibc default' if args.glibc_defaults else 'aslseg.malloc'} allocation")
    for bf16 in (False, True):
        for batch in (1, 4):
            seconds = median_seconds(lambda: model.embed(images[:batch], bf16=bf16, batch_size=batch), args.repeats)
            print(f"encoder {'bf16' if bf16 else 'fp32'} batch {batch}: {seconds / batch:.3f} s per slice")
    case = slices(args.prepared, 32)
    seconds = median_seconds(lambda: model.embed(case, bf16=True), 1)
    print(f"encoder bf16, 32 slices in one embed() call as sam_embed makes them: {seconds / len(case):.3f} s per slice")
    eager = model.embed(case[:4])
    start = time.perf_counter()
    print(f"encoder fp32 compiled: {model.compile_encoder(COMPILE_MIN_SLICES, bf16=False)}")
    model.embed(case[:1])
    print(f"  compilation and first slice: {time.perf_counter() - start:.1f} s")
    seconds = median_seconds(lambda: model.embed(images[:1]), args.repeats)
    compiled = model.embed(case[:4])
    print(f"encoder fp32 compiled batch 1: {seconds:.3f} s per slice "
          f"(relative difference to eager {((compiled - eager).norm() / eager.norm()).item():.1e})")
    model._compiled_encoder = None
    embeddings = model.embed(images, bf16=True, batch_size=4)
    boxes = np.tile(np.array([[size * 0.3, size * 0.3, size * 0.6, size * 0.6]], dtype=np.float32), (16, 1))
    many = embeddings[np.arange(16) % len(embeddings)]
    masks = np.zeros((len(images), size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(len(masks)):
        masks[i][(yy - size * (0.3 + 0.05 * i)) ** 2 + (xx - size * 0.5) ** 2 < (size * 0.08) ** 2] = 1
    steps = 10
    settings = FinetuneSettings(iterations=steps, batch_size=8, lr=1e-4, weight_decay=0.01, box_jitter=0.1,
                                prompts=("box", "point", "multipoint", "box+point"), train_prompt_encoder=False,
                                iou_loss_weight=1.0, shape=PromptShape(box_margin=3, min_component_pixels=4, multipoint_n=3))
    initial = model.decoder_state_dict()
    for bf16 in (False, True):
        model.decoder_bf16 = bf16
        with torch.no_grad():
            seconds = median_seconds(lambda: model.decode(many, boxes=boxes, out_size=size), args.repeats)
        print(f"decoder {'bf16' if bf16 else 'fp32'}, 16 box prompts at once: {1000 * seconds / 16:.1f} ms per prompt")
        model.load_decoder_state(initial)
        finetune(model, embeddings, masks, dataclasses.replace(settings, iterations=1), seed=0, progress=False)  # warm-up
        result = finetune(model, embeddings, masks, settings, seed=0, progress=False)
        print(f"decoder fine-tuning {'bf16' if bf16 else 'fp32'}, batch 8: {result.seconds / steps:.2f} s per step")


if __name__ == "__main__":
    main()
