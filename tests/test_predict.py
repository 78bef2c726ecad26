"""Segmenting new scans (aslseg/predict.py, rules/liver.smk): a real workflow trains the liver and tumor models
on small LiTS-format cases; scans it never saw, in other orientations and another spacing, are then segmented
by `python -m aslseg.predict` and by `snakemake predict`, and the masks must overlay them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nibabel import orientations

from aslseg.data.lits import CaseArrays
from aslseg.data.prepare import prepare_case
from aslseg.dice import pooled_dice
from aslseg.liver import liver_shape
from aslseg.data.restore import restore_stack
from aslseg.io import write_nifti
from tests.test_workflow import snakemake

pytestmark = pytest.mark.workflow


def easy_scan(seed: int, zooms=(0.8, 0.8, 2.5), shape=(40, 40, 12), tumor=True) -> tuple[np.ndarray, np.ndarray]:
    """HU and labels (LiTS: 1 liver, 2 tumor) of a box liver with a cubic tumor at a random place in it, laid out
    in mm so that the same anatomy can be sampled at any voxel size; voxel axes grow to the patient's left,
    posterior and superior (LPS storage). Air fills the first 2 mm of the first axis."""
    rng = np.random.default_rng(seed)
    x, y, z = ((np.arange(n) + 0.5) * s for n, s in zip(shape, zooms))
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    liver = (X > 4) & (X < 20) & (Y > 6.4) & (Y < 24) & (Z > 7.5) & (Z < 22.5)
    labels = liver.astype(np.uint8)
    hu = -100 + 10 * rng.standard_normal(shape)
    hu[liver] = 100 + 5 * rng.standard_normal(np.count_nonzero(liver))
    if tumor:
        cx, cy, cz = rng.uniform([8, 10.4, 12.5], [16, 20, 17.5])
        lesion = liver & (np.abs(X - cx) < 2.6) & (np.abs(Y - cy) < 2.6) & (np.abs(Z - cz) < 3.8)
        labels[lesion] = 2
        hu[lesion] = 30
    hu[X < 2] = -1000
    return np.round(hu).astype(np.int16), labels


def lps_affine(zooms) -> np.ndarray:
    return np.diag([-zooms[0], -zooms[1], zooms[2], 1.0])


CONFIG = {
    "targets": ["supervised"],
    "seeds": [0],
    "experiments": {"supervised": {"ssl": {"method": "supervised"}, "loop": {"rounds": 0}}},
    "data": {"source": "lits", "size": 32, "slice_margin": 1,
             "split": {"labeled": 0.4, "labeled_min_tumor_ml": 0.01}},
    "ssl": {"iterations": 300, "batch_size": 4, "lr": 0.003, "features": [8, 8, 16, 16, 32, 8], "val_every": 50},
    "liver": {"size": 32, "iterations": 60, "batch_size": 4, "lr": 0.01, "features": [4, 4, 8, 8, 16, 4], "val_every": 20},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workflow run on ten easy cases (two tumor-free): models, predictors, summary with end-to-end columns."""
    workdir = tmp_path_factory.mktemp("predict_run")
    lits = workdir / "lits"
    lits.mkdir()
    for case in range(10):
        hu, labels = easy_scan(case, tumor=case not in (3, 7))
        write_nifti(lits / f"volume-{case}.nii.gz", hu, lps_affine((0.8, 0.8, 2.5)))
        write_nifti(lits / f"segmentation-{case}.nii.gz", labels, lps_affine((0.8, 0.8, 2.5)))
    config = {**CONFIG, "data": {**CONFIG["data"], "lits_dir": str(lits)}}
    snakemake(workdir, config)
    (workdir / "config.json").write_text(json.dumps(config))
    return workdir


def new_scans(directory: Path) -> dict[str, tuple[nib.Nifti1Image, np.ndarray]]:
    """Scans the workflow never saw: one at 0.64 mm in-plane stored LPS, the same one reoriented to PIR, and
    a tumor-free one stored RAS. Name -> (image, labels in the image's voxel order)."""
    directory.mkdir(parents=True, exist_ok=True)
    zooms = (0.64, 0.64, 2.5)
    hu, labels = easy_scan(100, zooms=zooms, shape=(50, 50, 12))
    lps = nib.Nifti1Image(hu, lps_affine(zooms))
    to_pir = orientations.ornt_transform(orientations.io_orientation(lps.affine), orientations.axcodes2ornt("PIR"))
    pir = lps.as_reoriented(to_pir)
    hu_free, labels_free = easy_scan(101, tumor=False)
    ras = nib.Nifti1Image(hu_free[::-1, ::-1], np.diag([0.8, 0.8, 2.5, 1.0]))
    scans = {"fine_lps": (lps, labels), "fine_pir": (pir, orientations.apply_orientation(labels, to_pir).astype(np.uint8)),
             "free_ras": (ras, labels_free[::-1, ::-1])}
    for name, (image, _) in scans.items():
        nib.save(image, directory / f"{name}.nii.gz")
    return scans


def predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aslseg.predict", *args], capture_output=True, text=True, timeout=300)


def test_summary_reports_the_liver_model_and_end_to_end_metrics(trained):
    summary = pd.read_csv(trained / "results/summary.csv")
    row = summary.iloc[0]
    assert row["liver_dice"] > 0.8, row
    for column in ("dice_predicted_liver", "hd95_mm_predicted_liver", "lesion_precision_predicted_liver",
                   "fp_volume_ml_tumor_free_predicted_liver"):
        assert column in summary.columns
    cases = pd.read_csv(trained / "results" / row["model"] / "end_to_end/test_cases.csv")
    assert len(cases) == row["n_cases"] + row["n_tumor_free"]


def test_new_scans_are_segmented_in_their_own_geometry(trained, tmp_path):
    scans = new_scans(tmp_path / "scans")
    result = predict("--experiment", "supervised", "--results", str(trained / "results"),
                     "--input", str(tmp_path / "scans"), "--output", str(tmp_path / "masks"), "--probabilities")
    assert result.returncode == 0, result.stderr
    masks = {}
    for name, (image, truth) in scans.items():
        written = nib.load(tmp_path / f"masks/{name}_seg.nii.gz")
        assert written.shape == image.shape and np.allclose(written.affine, image.affine)
        assert nib.aff2axcodes(written.affine) == nib.aff2axcodes(image.affine)
        mask = np.asarray(written.dataobj)
        assert set(np.unique(mask)) <= {0, 1, 2}
        assert pooled_dice(mask > 0, truth > 0) > 0.8, name  # the liver, found by the liver model
        if truth.max() == 2:
            assert pooled_dice(mask == 2, truth == 2) > 0.5, name  # the tumor lands on the scan's tumor voxels
        probability = nib.load(tmp_path / f"masks/{name}_tumor_probability.nii.gz")
        assert probability.shape == image.shape and probability.get_data_dtype() == np.float32
        sidecar = json.loads((tmp_path / f"masks/{name}_seg.json").read_text())
        assert (sidecar["experiment"], sidecar["round"], sidecar["seed"]) == ("supervised", 0, 0)
        assert sidecar["liver_source"] == "model" and sidecar["predictor"]["threshold"] == 0.5
        masks[name] = mask
    # reorienting a scan permutes its voxels and nothing else: the masks are the same voxels
    to_pir = orientations.ornt_transform(orientations.io_orientation(scans["fine_lps"][0].affine),
                                         orientations.axcodes2ornt("PIR"))
    np.testing.assert_array_equal(orientations.apply_orientation(masks["fine_lps"], to_pir), masks["fine_pir"])


def test_snakemake_predict_writes_what_the_command_writes(trained, tmp_path):
    new_scans(tmp_path / "scans")
    config = json.loads((trained / "config.json").read_text())
    config["predict"] = {"input": str(tmp_path / "scans"), "output": str(tmp_path / "by_snakemake"), "experiment": "supervised"}
    snakemake(trained, config, "predict")
    assert predict("--model", str(trained / "results" / pd.read_csv(trained / "results/summary.csv")["model"][0]),
                   "--input", str(tmp_path / "scans"), "--output", str(tmp_path / "by_command")).returncode == 0
    for name in ("fine_lps", "fine_pir", "free_ras"):
        by_rule = np.asarray(nib.load(tmp_path / f"by_snakemake/{name}_seg.nii.gz").dataobj)
        np.testing.assert_array_equal(by_rule, np.asarray(nib.load(tmp_path / f"by_command/{name}_seg.nii.gz").dataobj))
    assert json.loads((tmp_path / "by_snakemake/fine_lps_seg.json").read_text())["experiment"] == "supervised"


def test_a_bad_scan_stops_the_run_before_any_mask_is_written(trained, tmp_path):
    scans = tmp_path / "scans"
    new_scans(scans)
    hu, _ = easy_scan(5)
    broken = hu.astype(np.float32)
    broken[1, 2, 3] = np.nan
    write_nifti(scans / "broken.nii.gz", broken, lps_affine((0.8, 0.8, 2.5)))
    result = predict("--experiment", "supervised", "--results", str(trained / "results"),
                     "--input", str(scans), "--output", str(tmp_path / "masks"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"aslseg.predict: {scans / 'broken.nii.gz'}: contains 1 NaN or infinite voxels"
    assert not (tmp_path / "masks").exists() or not any((tmp_path / "masks").iterdir())
    unknown = predict("--experiment", "nope", "--results", str(trained / "results"), "--input", str(scans),
                      "--output", str(tmp_path / "masks"))
    assert unknown.returncode == 2 and "no experiment 'nope'" in unknown.stderr


def test_given_liver_masks_replace_the_liver_model(trained, tmp_path):
    scans = new_scans(tmp_path / "scans")
    livers = tmp_path / "livers"
    livers.mkdir()
    for name, (image, truth) in scans.items():
        liver = (truth > 0).astype(np.uint8) if name != "free_ras" else np.zeros_like(truth)  # no liver in one
        nib.save(nib.Nifti1Image(liver, image.affine), livers / f"{name}.nii.gz")
    result = predict("--experiment", "supervised", "--results", str(trained / "results"), "--input",
                     str(tmp_path / "scans"), "--output", str(tmp_path / "masks"), "--liver", str(livers))
    assert result.returncode == 0, result.stderr
    for name, (image, truth) in scans.items():
        mask = np.asarray(nib.load(tmp_path / f"masks/{name}_seg.nii.gz").dataobj)
        if name == "free_ras":
            assert not mask.any() and "no liver found" in result.stderr  # a warning and an all-zero mask
        else:
            np.testing.assert_array_equal(mask > 0, truth > 0)
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), np.eye(4)), livers / "fine_lps.nii.gz")
    wrong = predict("--experiment", "supervised", "--results", str(trained / "results"), "--input",
                    str(tmp_path / "scans"), "--output", str(tmp_path / "masks2"), "--liver", str(livers))
    assert wrong.returncode == 2 and "fine_lps.nii.gz: shape (3, 3, 3) does not match" in wrong.stderr


def test_preparation_geometry_is_undone_exactly_enough():
    """A mask prepared (liver crop, resize) and restored lands back on its voxels, also where the crop box
    overhangs the slice."""
    labels = np.zeros((20, 200, 180), np.uint8)
    labels[4:15, 30:150, 10:120] = 1
    labels[6:10, 60:90, 20:50] = 2
    hu = np.zeros(labels.shape, np.float32)
    for crop in ("liver", "none"):
        prepared = prepare_case(CaseArrays(hu, labels, (5.0, 0.8, 0.8)), (-160, 240), 64, 2, crop, 15.0)
        restored = restore_stack(prepared.tumor.astype(np.float32), prepared.slice_index, prepared.crop_box, labels.shape)
        assert pooled_dice(restored > 0.5, labels == 2) > 0.95, crop
    assert prepared.crop_box[1] >= 0 and prepare_case(CaseArrays(hu, labels, (5.0, 0.8, 0.8)), (-160, 240), 64, 2,
                                                      "liver", 15.0).crop_box[1] < 0  # the liver crop overhangs


def test_the_liver_is_one_component_without_holes():
    mask = np.zeros((5, 20, 20), bool)
    mask[1:4, 2:15, 2:15] = True
    mask[2, 6:9, 6:9] = False  # a hypodense lesion the liver model missed
    mask[1, 18, 18] = True  # a speck elsewhere
    shaped = liver_shape(mask)
    assert shaped[2, 7, 7] == 1 and shaped[1, 18, 18] == 0 and shaped.sum() == 3 * 13 * 13
    assert not liver_shape(np.zeros((2, 4, 4), bool)).any()
