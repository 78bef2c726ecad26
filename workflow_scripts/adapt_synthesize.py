"""Rule adapt_synthesize: synthetic PL1 and PL2 for the labeled volumes' slices (AN's training set) and the
val volumes' slices (its validation set)."""

import json
from collections import Counter

import numpy as np
import torch

from aslseg.adapt.corruptions import CorruptionSettings
from aslseg.adapt.synthesis import synthetic_pseudo_labels
from aslseg.gpus import default_device
from aslseg.io import write_json, write_npz
from aslseg.prepared import PreparedFiles
from aslseg.sam.embeddings import EmbeddingStore
from aslseg.sam.model import load_configured_sam
from aslseg.sam.prompts import PromptShape
from aslseg.workflow import job_logging


def slices_of(files: PreparedFiles, cases: list[int]):
    """(case, position, tumor, liver, image, in-plane pixel size in mm) of every slice of `cases`."""
    case, position, tumor, liver, image_slices, pixel_mm = [], [], [], [], [], []
    for case_id in cases:
        with np.load(files.image(case_id)) as image, np.load(files.label(case_id)) as label:
            tumor.append(label["tumor"])
            liver.append(image["liver"].astype(bool))
            image_slices.append(image["image"].astype(np.float32))
            pixel_mm.append(np.full(len(tumor[-1]), float(image["spacing"][1])))
        case.append(np.full(len(tumor[-1]), case_id))
        position.append(np.arange(len(tumor[-1])))
    return (np.concatenate(case), np.concatenate(position), np.concatenate(tumor), np.concatenate(liver),
            np.concatenate(image_slices), np.concatenate(pixel_mm))


with job_logging(snakemake) as log:
    torch.set_num_threads(snakemake.threads)
    sam = snakemake.params.sam
    decoder = snakemake.input.decoder if "decoder" in snakemake.input.keys() else None
    model = load_configured_sam(sam, default_device(), decoder)
    log.info(model.precision.describe("SAM's decoder"))
    split = json.loads(open(snakemake.input.split).read())
    files = PreparedFiles(snakemake.input.images, snakemake.input.labels)
    store = EmbeddingStore(snakemake.input.embeddings)
    corruptions = CorruptionSettings.from_config(snakemake.params.corruptions)
    arrays, summary = {}, {}
    for part, seed_offset in (("train", 0), ("val", 1)):
        cases = split["labeled"] if part == "train" else split["val"]
        case, position, tumor, liver, images, pixel_mm = slices_of(files, cases)
        synthetic = synthetic_pseudo_labels(model, store, case, position, tumor, liver, corruptions, sam["prompt"],
                                            PromptShape.from_config(sam),
                                            snakemake.params.copies, int(snakemake.wildcards.seed) * 2 + seed_offset,
                                            sam["threshold"], images, sam["max_rim_share"], pixel_mm)
        for name in ("case", "position", "pl1", "pl2", "sam_probability"):
            arrays[f"{part}_{name}"] = getattr(synthetic, name)
        counts = Counter(name for applied in synthetic.applied for name in applied)
        summary[part] = {"cases": cases, "examples": len(synthetic.pl1), "corruptions_applied": dict(sorted(counts.items()))}
        log.info("%s: %d synthetic examples from %d slices; corruptions %s", part, len(synthetic.pl1), len(tumor), dict(counts))
    write_npz(snakemake.output.synthetic, **arrays)
    write_json(snakemake.output.summary, summary)
