"""Segmenting scans in a geometry the workflow never saw (issue 17's check, evaluation only: reads the truth).

Takes test volumes of the first seed's split, resamples them to other voxel sizes and stores them in other
orientations (volume and truth alike), segments them with `aslseg.predict` as a user would, and reports per
scan the time, the liver Dice and the tumor Dice against the resampled truth. Draws the first scans' masks
over their own voxel grid (the array as stored, no reorientation) to `--figure`.

    .venv/bin/python benchmarks/predict_demo.py [--results results] [--experiment aslseg] [--figure docs/predict_overlay.png]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
import torch
from nibabel import orientations
from scipy import ndimage

from aslseg.dice import pooled_dice
from aslseg.precision import cpu_report
from aslseg.predict import Predictor, model_dir_of, predict_folder

# (voxel size in mm along the file's axes after reorientation is applied to RAS x, y, z; orientation codes)
GEOMETRIES = [((1.0, 1.0, 3.0), "RAS"), ((1.2, 1.2, 2.5), "PIR"), ((0.9, 0.9, 5.0), "LPI")]


def resampled(image: nib.Nifti1Image, zooms_xyz, codes: str, order: int) -> nib.Nifti1Image:
    """`image` resampled to `zooms_xyz` mm along its RAS axes and stored in orientation `codes`."""
    canonical = nib.as_closest_canonical(image)
    old = np.asarray(canonical.header.get_zooms()[:3], dtype=float)
    factors = old / np.asarray(zooms_xyz)
    data = ndimage.zoom(np.asanyarray(canonical.dataobj).astype(np.float32), factors, order=order, grid_mode=True,
                        mode="nearest")
    affine = canonical.affine.copy()
    affine[:3, :3] = canonical.affine[:3, :3] / factors  # columns scaled: voxel i of the new grid spans 1/f old ones
    affine[:3, 3] += canonical.affine[:3, :3] @ ((1 / factors - 1) / 2)  # first voxel centre, grid-aligned
    dtype = np.int16 if order else np.uint8
    out = nib.Nifti1Image(np.round(data).astype(dtype), affine)
    to = orientations.ornt_transform(orientations.io_orientation(affine), orientations.axcodes2ornt(codes))
    return out.as_reoriented(to)


def overlay(ax, hu: np.ndarray, mask: np.ndarray, truth: np.ndarray, title: str, aspect: float) -> None:
    """A 2D slice of the file's grid (rows: its first in-plane axis, drawn left to right), in mm proportions."""
    ax.imshow(np.clip((hu.T + 160) / 400, 0, 1), cmap="gray", origin="lower", interpolation="nearest", aspect=aspect)
    for label, colour in ((1, "lime"), (2, "red")):
        if (mask >= label).any():
            ax.contour((mask >= label).T, levels=[0.5], colors=colour, linewidths=0.8, origin="lower")
    if (truth == 2).any():
        ax.contour((truth == 2).T, levels=[0.5], colors="yellow", linewidths=0.8, linestyles="dashed", origin="lower")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--experiment", default="aslseg")
    parser.add_argument("--figure", type=Path, default=Path("docs/predict_overlay.png"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(cpu_report())
    model_dir, request = model_dir_of(args.results, args.experiment, None, None)
    split = json.loads((args.results / f"data/splits/labeled-0.1/seed-{request['seed']}.json").read_text())
    phantom = args.results / "data/phantom"
    with tempfile.TemporaryDirectory() as tmp:
        scans, truths, rows = Path(tmp) / "scans", {}, []
        scans.mkdir()
        for case, (zooms, codes) in zip(sorted(split["test"]), GEOMETRIES):
            name = f"case{case}_{codes}_{zooms[0]:g}x{zooms[1]:g}x{zooms[2]:g}mm"
            nib.save(resampled(nib.load(phantom / f"volume-{case}.nii.gz"), zooms, codes, 1), scans / f"{name}.nii.gz")
            truths[name] = resampled(nib.load(phantom / f"segmentation-{case}.nii.gz"), zooms, codes, 0)
        start = time.perf_counter()
        predictor = Predictor.load(model_dir)
        load_s = time.perf_counter() - start
        sidecars = predict_folder(predictor, scans, Path(tmp) / "masks", model_dir, request=request)
        figure, axes = plt.subplots(1, len(sidecars), figsize=(3.2 * len(sidecars), 3.4))
        for ax, sidecar in zip(np.atleast_1d(axes), sidecars):
            name = Path(sidecar["scan"]).name.removesuffix(".nii.gz")
            mask = np.asarray(nib.load(sidecar["mask"]).dataobj)
            truth = np.asarray(truths[name].dataobj)
            hu = np.asarray(nib.load(sidecar["scan"]).dataobj)
            rows.append({"scan": name, "shape": "x".join(map(str, hu.shape)), "seconds": round(sidecar["seconds"], 2),
                         "liver_dice": pooled_dice(mask > 0, truth > 0), "tumor_dice": pooled_dice(mask == 2, truth == 2, None)})
            axis = 2  # slices along the file's third axis, whatever anatomy it runs along
            pick = int(np.argmax((truth == 2).sum(axis=tuple(a for a in range(3) if a != axis)))) if (truth == 2).any() \
                else hu.shape[axis] // 2
            take = [slice(None)] * 3
            take[axis] = pick
            overlay(ax, hu[tuple(take)], mask[tuple(take)], truth[tuple(take)],
                    f"{name}\nstored {''.join(nib.aff2axcodes(truths[name].affine))}, {hu.shape}, slice {pick} of axis 3",
                    aspect=float(truths[name].header.get_zooms()[1] / truths[name].header.get_zooms()[0]))
        figure.suptitle(f"{args.experiment} (round {request['round']}, seed {request['seed']}): liver (green), tumor "
                        "(red), true tumor (yellow, dashed), on each file's own voxel grid", fontsize=8)
        figure.tight_layout()
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.figure, dpi=130)
    print(f"models loaded in {load_s:.1f} s; {predictor.tumor_precision}; {predictor.liver.precision.describe('liver')}")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
