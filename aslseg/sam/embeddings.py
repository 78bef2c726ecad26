"""The SAM image-embedding cache: each prepared slice that holds liver is embedded once (the encoder is
frozen), stored in fp16 and read back by fine-tuning and prediction of every experiment, seed and round.

A shard is two files: `shard-K.npy`, (slices, 256, 64, 64) float16, uncompressed so readers memory-map it
and touch only the rows they need; and `shard-K.json`, the (case, position) of each row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from aslseg.io import atomic_path, write_json

EMBEDDING_SHAPE = (256, 64, 64)  # SAM's image embedding, for every backend here


def embedded_positions(liver: np.ndarray) -> np.ndarray:
    """The positions of a case's slices that get an embedding: those whose liver region is not empty. SAM is
    only ever prompted there -- Pseudo Label 1 is confined to the liver region, synthetic false blobs to that
    region grown by a few pixels in the same slice, and tumors are part of it -- so the slices kept above and
    below the liver for Stage I (data.slice_margin, ~10% of the default's) need none."""
    liver = np.asarray(liver)
    return np.flatnonzero(liver.reshape(len(liver), -1).any(axis=1))


def write_shard(
    array_path: str | Path, index_path: str | Path, rows: list[tuple[int, int]], batches: Iterable[np.ndarray],
    **info,
) -> None:
    """Write one shard atomically, streaming `batches` (consecutive rows' embeddings) into a memory-mapped
    file so a shard never has to fit in memory; the index (the rows, and `info` such as the precision the
    encoder ran in) is written last (a shard whose index exists is complete)."""
    with atomic_path(array_path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(rows), *EMBEDDING_SHAPE))
        filled = 0
        for batch in batches:
            array[filled : filled + len(batch)] = batch
            filled += len(batch)
        if filled != len(rows):
            raise ValueError(f"{array_path}: {filled} embeddings for {len(rows)} index rows")
        array.flush()
        del array
    write_json(index_path, {"rows": [[int(case), int(position)] for case, position in rows], **info})


class EmbeddingStore:
    """Looks slices up by (case, position) across shards, memory-mapped."""

    def __init__(self, array_paths: list[str | Path]):
        self._arrays = []
        self._where: dict[tuple[int, int], tuple[int, int]] = {}
        for shard, path in enumerate(array_paths):
            path = Path(path)
            self._arrays.append(np.load(path, mmap_mode="r"))
            rows = json.loads(path.with_suffix(".json").read_text())["rows"]
            if len(rows) != len(self._arrays[-1]):
                raise ValueError(f"{path}: {len(self._arrays[-1])} embeddings but {len(rows)} index rows")
            for row, (case, position) in enumerate(rows):
                self._where[(case, position)] = (shard, row)

    def __contains__(self, key: tuple[int, int]) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, keys: list[tuple[int, int]]) -> np.ndarray:
        """(len(keys), 256, 64, 64) float16 for slices given as (case, position)."""
        missing = [key for key in keys if key not in self._where]
        if missing:
            raise KeyError(f"slices not embedded (case, position): {missing[:5]}")
        if not keys:
            return np.zeros((0, *EMBEDDING_SHAPE), dtype=np.float16)
        return np.stack([self._arrays[shard][row] for shard, row in (self._where[key] for key in keys)])

    def case(self, case_id: int, n_slices: int) -> np.ndarray:
        """Every slice of one case, in order."""
        return self.get([(case_id, position) for position in range(n_slices)])
