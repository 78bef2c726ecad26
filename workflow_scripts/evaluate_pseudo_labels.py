"""Rule evaluate_pseudo_labels (reads the unlabeled volumes' hidden labels: evaluation only): Dice and lesion
counts of Pseudo Labels 1 and 2 against the ground truth."""

import numpy as np

from aslseg.io import write_json
from aslseg.prepared import PreparedFiles
from aslseg.sam.quality import pseudo_label_quality
from aslseg.workflow import job_logging


def masks_of(paths: list[str]) -> dict[int, np.ndarray]:
    masks = {}
    for path in paths:
        with np.load(path) as shard:
            masks.update({int(key.split("_")[1]): shard[key] for key in shard.files if key.startswith("mask_")})
    return masks


with job_logging(snakemake) as log:
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    volumes = {case: files.volume(case) for case in sorted(files.images)}
    quality = pseudo_label_quality(
        {case: volume.tumor for case, volume in volumes.items()},
        {"pl1": masks_of(snakemake.input.pl1), "pl2": masks_of(snakemake.input.pl2)},
        {case: volume.spacing for case, volume in volumes.items()},
    )
    write_json(snakemake.output[0], quality)
    for name in ("pl1", "pl2"):
        log.info("%s: Dice %s (prompted slices %s), missed %d, false-positive lesions %d", name, quality[name]["dice"],
                 quality[name]["dice_prompted_slices"], quality[name]["missed_lesions"], quality[name]["false_positive_lesions"])
