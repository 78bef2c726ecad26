"""Per-step costs of MS(.) on this machine: image-encoder seconds per slice (fp32 and bf16 autocast, batch 1
and 4), decoder milliseconds per prompt, and decoder fine-tuning seconds per step. Medians of repeats.

    .venv/bin/python benchmarks/sam_costs.py [--threads 2] [--repeats 5] [--prepared results/data/prepared/images]

Slices come from a prepared case when one exists (else a synthetic one), so the encoder sees real sizes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from aslseg.sam.finetune import FinetuneSettings, finetune
from aslseg.sam.model import load_sam


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
        return np.resize(image, (n, *image.shape[1:]))
    return np.random.default_rng(0).random((n, 128, 128), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prepared", type=Path, default=Path("results/data/prepared/images"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_sam()
    images = slices(args.prepared, 8)
    size = images.shape[-1]
    print(f"LiteMedSAM, {args.threads} threads, slices {size}x{size} -> {model.input_size}")
    for bf16 in (False, True):
        for batch in (1, 4):
            seconds = median_seconds(lambda: model.embed(images[:batch], bf16=bf16, batch_size=batch), args.repeats)
            print(f"encoder {'bf16' if bf16 else 'fp32'} batch {batch}: {seconds / batch:.3f} s per slice")
    embeddings = model.embed(images, bf16=True, batch_size=4)
    boxes = np.tile(np.array([[size * 0.3, size * 0.3, size * 0.6, size * 0.6]], dtype=np.float32), (16, 1))
    many = embeddings[np.arange(16) % len(embeddings)]
    with torch.no_grad():
        seconds = median_seconds(lambda: model.decode(many, boxes=boxes, out_size=size), args.repeats)
    print(f"decoder, 16 box prompts at once: {1000 * seconds / 16:.1f} ms per prompt")
    masks = np.zeros((len(images), size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(len(masks)):
        masks[i][(yy - size * (0.3 + 0.05 * i)) ** 2 + (xx - size * 0.5) ** 2 < (size * 0.08) ** 2] = 1
    steps = 10
    settings = FinetuneSettings(iterations=steps, batch_size=8, lr=1e-4, weight_decay=0.01, box_jitter=0.1, box_margin=3,
                                prompts=("box", "point", "multipoint", "box+point"), multipoint_n=3,
                                train_prompt_encoder=False, iou_loss_weight=1.0, min_component_pixels=4)
    result = finetune(model, embeddings, masks, settings, seed=0, progress=False)
    print(f"decoder fine-tuning, batch 8: {result.seconds / steps:.2f} s per step")


if __name__ == "__main__":
    main()
