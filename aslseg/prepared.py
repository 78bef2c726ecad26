"""Reading prepared cases by id: where their files live and what they hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CASE_FILE = re.compile(r"case-(\d+)\.npz$")


def case_id_of(path: str | Path) -> int:
    """The case id in a prepared file's name (case-N.npz)."""
    match = CASE_FILE.search(str(path))
    if not match:
        raise ValueError(f"{path}: not a prepared case file (case-N.npz)")
    return int(match.group(1))


@dataclass(frozen=True)
class Volume:
    """A prepared volume with its tumor label (only for volumes whose labels the caller may read)."""

    case_id: int
    image: np.ndarray  # float32 (S, H, W)
    tumor: np.ndarray  # uint8 (S, H, W)
    spacing: tuple[float, float, float]
    liver: np.ndarray | None = None  # uint8 (S, H, W): the known liver region (incl. tumor); predictions stay in it


class PreparedFiles:
    """Maps case ids to the prepared image and label files a job was given as inputs."""

    def __init__(self, image_paths: list[str], label_paths: list[str] = ()):
        self.images = {case_id_of(p): Path(p) for p in image_paths}
        self.labels = {case_id_of(p): Path(p) for p in label_paths}

    def image(self, case_id: int) -> Path:
        return self.images[case_id]

    def label(self, case_id: int) -> Path:
        if case_id not in self.labels:
            raise KeyError(f"case {case_id}: its tumor label is not an input of this job")
        return self.labels[case_id]

    def slices(self, case_id: int) -> np.ndarray:
        """The case's prepared image, float32 (S, H, W)."""
        with np.load(self.image(case_id)) as image:
            return image["image"].astype(np.float32)

    def tumor(self, case_id: int) -> np.ndarray:
        """The case's tumor label, uint8 (S, H, W), if this job may read it."""
        with np.load(self.label(case_id)) as label:
            return label["tumor"]

    def volume(self, case_id: int) -> Volume:
        """A case whose label this job may read, with its spacing in mm."""
        with np.load(self.image(case_id)) as image, np.load(self.label(case_id)) as label:
            spacing = tuple(float(s) for s in image["spacing"])
            return Volume(case_id, image["image"].astype(np.float32), label["tumor"], spacing, image["liver"])
