"""Segmenting new CT scans with a trained model: a folder of NIfTI volumes in, `<name>_seg.nii.gz` (0
background, 1 liver, 2 tumor: the LiTS labels) out, in each scan's own shape, affine and orientation.

A scan goes through what the workflow's volumes went through, with the liver found instead of read: the liver
model (or a given liver mask) -> the slices with liver +- margin, the square crop around it, the window and
resize of preparation -> SS(.) of the chosen round, kept inside the liver -> back to the full slices and the
file's voxel order. Which models and settings are used comes from the model folder's `predictor.json`
(written by the workflow's rule `predictor`), and is recorded per scan in `<name>_seg.json`.

    python -m aslseg.predict --experiment aslseg --input scans/ --output masks/   [--round R] [--seed S]
    python -m aslseg.predict --model results/ssl/bcp-0123456789/seed-0 --input scans/ --output masks/
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from aslseg.data.lits import CaseArrays, DataError
from aslseg.data.prepare import prepare_case
from aslseg.data.restore import restore_stack
from aslseg.data.scans import Scan, ScanError, load_scan, scan_files, scan_name
from aslseg.gpus import default_device
from aslseg.io import write_json
from aslseg.liver import LiverModel, load_liver_model
from aslseg.ssl.checkpoint import load_model
from aslseg.seg2d.network import predict_probabilities

log = logging.getLogger("aslseg.predict")
PREDICTOR = "predictor.json"
LIVER, TUMOR = 1, 2


@dataclass(frozen=True)
class Segmentation:
    """One scan's result in display order."""

    labels: np.ndarray  # uint8: 0 background, 1 liver, 2 tumor
    tumor_probability: np.ndarray  # float32, 0 outside the liver and the prepared slices
    liver_found: bool


@dataclass
class Predictor:
    """The two networks and the preparation settings a model folder's predictor.json names."""

    record: dict
    tumor: torch.nn.Module
    tumor_precision: str
    liver: LiverModel

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "cpu") -> "Predictor":
        path = Path(model_dir) / PREDICTOR
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; build it with `snakemake {path}` (rule predictor)")
        record = json.loads(path.read_text())
        tumor, checkpoint = load_model(path.parent / record["tumor_model"], device)
        liver = load_liver_model(path.parent / record["liver_model"], device)
        return cls(record, tumor, checkpoint["inference_precision"].describe("SS(.)"), liver)

    def segment(self, hu: np.ndarray, spacing: tuple[float, float, float], liver: np.ndarray | None = None) -> Segmentation:
        """Liver and tumor of a display-order scan; `liver` (display order, nonzero = liver) replaces the liver
        model's mask when given."""
        data = self.record["data"]
        if liver is None:
            liver = self.liver.segment(hu)
        liver = (np.asarray(liver) > 0).astype(np.uint8)
        if not liver.any():
            return Segmentation(np.zeros(hu.shape, np.uint8), np.zeros(hu.shape, np.float32), False)
        prepared = prepare_case(CaseArrays(hu, liver, spacing), tuple(data["window"]), data["size"],
                                data["slice_margin"], data["crop"], data["crop_margin_mm"])
        # the prepared files the models learned from hold float16 images
        image = prepared.image.astype(np.float16).astype(np.float32)
        probability = predict_probabilities(self.tumor, image, region=prepared.liver)
        full = restore_stack(probability, prepared.slice_index, prepared.crop_box, hu.shape)
        full = np.where(liver > 0, full, np.float32(0.0))
        labels = np.where(liver > 0, LIVER, 0).astype(np.uint8)
        labels[full > self.record["threshold"]] = TUMOR
        return Segmentation(labels, full, True)


def liver_mask_for(scan: Scan, liver_dir: Path) -> np.ndarray:
    """The given liver mask of a scan (`<liver_dir>/<scan name>.nii[.gz]`, nonzero = liver) in display order,
    checked against the scan's grid."""
    matches = [p for p in sorted(liver_dir.glob(f"{scan.name}.nii*")) if scan_name(p) == scan.name]
    if not matches:
        raise ScanError(f"{liver_dir}: no liver mask {scan.name}.nii[.gz] for {scan.path}")
    return (scan.read_on_grid(matches[0]) > 0).astype(np.uint8)


def output_paths(output_dir: Path, name: str) -> dict[str, Path]:
    return {"seg": output_dir / f"{name}_seg.nii.gz", "sidecar": output_dir / f"{name}_seg.json",
            "probability": output_dir / f"{name}_tumor_probability.nii.gz"}


def segment_file(predictor: Predictor, path: str | Path, output_dir: str | Path, model_dir: str | Path,
                 liver_dir: str | Path | None = None, probabilities: bool = False, request: dict | None = None) -> dict:
    """Segment one scan file into `output_dir` (each file written whole or not at all); returns its sidecar."""
    start = time.perf_counter()
    scan = load_scan(path)
    given = None if liver_dir is None else liver_mask_for(scan, Path(liver_dir))
    result = predictor.segment(scan.hu, scan.spacing, given)
    if not result.liver_found:
        log.warning("%s: no liver found; its mask is all zero", path)
    out = output_paths(Path(output_dir), scan.name)
    scan.write_native(out["seg"], result.labels)
    if probabilities:
        scan.write_native(out["probability"], result.tumor_probability)
    voxel_ml = float(np.prod(scan.spacing)) / 1000.0
    sidecar = {
        "scan": str(path), "mask": str(out["seg"]),
        "probability": str(out["probability"]) if probabilities else None,
        "model_dir": str(model_dir), **(request or {}),
        "liver_source": "model" if given is None else str(Path(liver_dir)),
        "liver_found": result.liver_found,
        "liver_ml": float(np.count_nonzero(result.labels > 0)) * voxel_ml,
        "tumor_ml": float(np.count_nonzero(result.labels == TUMOR)) * voxel_ml,
        "shape": list(scan.native_shape), "voxel_size_mm": [float(z) for z in scan.header.get_zooms()[:3]],
        "precision": {"tumor": predictor.tumor_precision, "liver": predictor.liver.precision.describe("liver")},
        "seconds": time.perf_counter() - start,
        "predictor": predictor.record,
    }
    write_json(out["sidecar"], sidecar)
    log.info("%s: liver %.0f mL, tumor %.1f mL, %.1f s", scan.name, sidecar["liver_ml"], sidecar["tumor_ml"],
             sidecar["seconds"])
    return sidecar


def checked_scans(input_dir: str | Path, liver_dir: str | Path | None = None) -> list[Path]:
    """The scans of `input_dir`, each (and its given liver mask) read and checked: a bad file stops a run here,
    before the first mask is written."""
    paths = scan_files(input_dir)
    names = [scan_name(p) for p in paths]
    twins = sorted({n for n in names if names.count(n) > 1})
    if twins:
        raise ScanError(f"{input_dir}: {twins[0]}.nii and {twins[0]}.nii.gz would write the same mask")
    for path in paths:
        scan = load_scan(path)
        if liver_dir is not None:
            liver_mask_for(scan, Path(liver_dir))
    return paths


def predict_folder(predictor: Predictor, input_dir: str | Path, output_dir: str | Path, model_dir: str | Path,
                   liver_dir: str | Path | None = None, probabilities: bool = False, request: dict | None = None) -> list[dict]:
    """Segment every scan of `input_dir` into `output_dir`, all checked first (`checked_scans`)."""
    paths = checked_scans(input_dir, liver_dir)
    return [segment_file(predictor, path, output_dir, model_dir, liver_dir, probabilities, request) for path in paths]


def model_dir_of(results: Path, experiment: str, round_index: int | None, seed: int | None) -> tuple[Path, dict]:
    """The model folder of an experiment's round and seed, looked up in results/summary.csv (the last round
    and the first seed unless given)."""
    summary = results / "summary.csv"
    if not summary.is_file():
        raise FileNotFoundError(f"{summary}: missing; run the workflow first (`make run`)")
    rows = pd.read_csv(summary)
    rows = rows[rows["experiment"] == experiment]
    if rows.empty:
        known = ", ".join(sorted(pd.read_csv(summary)["experiment"].unique()))
        raise KeyError(f"{summary}: no experiment {experiment!r} (trained: {known})")
    seed = int(rows["seed"].min()) if seed is None else seed
    rows = rows[rows["seed"] == seed]
    round_index = int(rows["round"].max()) if round_index is None and not rows.empty else round_index
    row = rows[rows["round"] == round_index]
    if row.empty:
        raise KeyError(f"{summary}: experiment {experiment!r} has no round {round_index} of seed {seed}")
    request = {"experiment": experiment, "round": int(round_index), "seed": int(seed)}
    return results / row.iloc[0]["model"], request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aslseg.predict", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--experiment", help="an experiment of results/summary.csv (its last round, first seed)")
    which.add_argument("--model", type=Path, help="a model folder holding predictor.json")
    parser.add_argument("--round", type=int, help="the experiment's round (default: its last)")
    parser.add_argument("--seed", type=int, help="the experiment's run seed (default: its first)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the workflow's results folder")
    parser.add_argument("--input", type=Path, required=True, help="folder of .nii / .nii.gz CT scans in HU")
    parser.add_argument("--output", type=Path, required=True, help="folder for <name>_seg.nii.gz and <name>_seg.json")
    parser.add_argument("--liver", type=Path, help="folder of liver masks <name>.nii[.gz] to use instead of the liver model")
    parser.add_argument("--probabilities", action="store_true", help="also write <name>_tumor_probability.nii.gz")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.model is not None:
            model_dir, request = args.model, {}
        else:
            model_dir, request = model_dir_of(args.results, args.experiment, args.round, args.seed)
        paths = checked_scans(args.input, args.liver)
        predictor = Predictor.load(model_dir, default_device())
        log.info("model %s; %s; %s", model_dir, predictor.tumor_precision, predictor.liver.precision.describe("liver"))
        for path in paths:
            segment_file(predictor, path, args.output, model_dir, args.liver, args.probabilities, request)
    except (ScanError, DataError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"aslseg.predict: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
