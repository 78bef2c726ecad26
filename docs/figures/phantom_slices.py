"""Draw docs/figures/phantom_slices.png: phantom slices through tumors, as stored (HU) and as prepared.

Run after the data stage:  .venv/bin/python docs/figures/phantom_slices.py [--results results] [--cases 0 5 8 19]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from aslseg.data.lits import CaseFiles, load_case


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default="results")
    parser.add_argument("--cases", type=int, nargs="+", default=[0, 5, 8, 19])
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".png")))
    args = parser.parse_args()
    results = Path(args.results)
    fig, axes = plt.subplots(2, len(args.cases), figsize=(4 * len(args.cases), 8.4), squeeze=False)
    for column, case_id in enumerate(args.cases):
        raw = results / "data" / "phantom"
        case = load_case(CaseFiles(case_id, raw / f"volume-{case_id}.nii.gz", raw / f"segmentation-{case_id}.nii.gz"))
        tumor_per_slice = (case.labels == 2).sum(axis=(1, 2))
        k = int(tumor_per_slice.argmax()) if tumor_per_slice.any() else case.labels.shape[0] // 2
        top = axes[0, column]
        top.imshow(case.hu[k], cmap="gray", vmin=-160, vmax=240)
        top.contour(case.labels[k] >= 1, levels=[0.5], colors="lime", linewidths=0.6)
        top.contour(case.labels[k] == 2, levels=[0.5], colors="red", linewidths=0.8)
        top.set_title(f"volume-{case_id}, slice {k} ({case.spacing[1]:.2f} mm)", fontsize=9)
        with np.load(results / "data/prepared/images" / f"case-{case_id}.npz") as image, np.load(
            results / "data/prepared/labels" / f"case-{case_id}.npz"
        ) as label:
            position = int(np.flatnonzero(image["slice_index"] == k)[0])
            bottom = axes[1, column]
            bottom.imshow(image["image"][position].astype(np.float32), cmap="gray", vmin=0, vmax=1)
            bottom.contour(label["tumor"][position], levels=[0.5], colors="red", linewidths=0.8)
            bottom.set_title(f"prepared {image['image'].shape[1]}², {image['spacing'][1]:.2f} mm", fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle("Phantom: window [-160, 240] HU; green liver, red tumor; patient right on image left", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=1.5)
    fig.savefig(args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
