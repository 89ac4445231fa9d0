"""Features on disk: a folder of flat binary arrays, written in batches and read back in chunks.

A probe over 1.2 M images cannot hold their tokens in memory, and should not need to hold even
their pooled features. A :class:`FeatureStore` keeps each array (``pooled``, ``lastk``, ``tokens``,
``labels``) as one raw file of rows plus ``meta.json``; rows are read with positioned reads
(``numpy.fromfile`` with an offset), never memory-mapped, so reading a chunk costs the chunk's
bytes of resident memory and nothing more (a memory map would count every page it touched).

A store is complete when its ``meta.json`` exists: :class:`StoreWriter` writes it last, after the
arrays, so a store left by a killed run is seen as incomplete and written again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FeatureStore", "StoreWriter"]

META = "meta.json"


class StoreWriter:
    """Append rows to the arrays of a new store in ``folder`` (emptied first).

    Args:
        folder: where the store goes.
        key: what the features are of (checkpoint, encoder, data, layers); kept in ``meta.json``
            so a cache is reused only for the same key.
    """

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        if folder.exists():  # an incomplete store, left by a killed run; anything else is not ours to delete
            foreign = ([p.name for p in folder.iterdir() if not (p.suffix == ".bin" or p.name == META + ".tmp")]
                       if folder.is_dir() else [folder.name])
            if foreign:
                raise FileExistsError(f"{folder}: holds {foreign[:3]}, not features; give an empty --cache folder")
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        self.folder, self.key = folder, key
        self.arrays: dict[str, tuple[str, tuple[int, ...], int]] = {}  # name -> (dtype, row shape, rows)
        self.files: dict[str, Any] = {}

    def append(self, name: str, rows: NDArray[Any]) -> None:
        """Append ``rows`` ``(n, ...)``; every call for one name must give one dtype and row shape."""
        rows = np.ascontiguousarray(rows)
        entry = (rows.dtype.str, tuple(int(s) for s in rows.shape[1:]))
        if name not in self.arrays:
            self.arrays[name] = (*entry, 0)
            self.files[name] = (self.folder / f"{name}.bin").open("wb")
        dtype, shape, count = self.arrays[name]
        if (dtype, shape) != entry:
            raise ValueError(f"StoreWriter: {name} rows {entry} after {dtype, shape}")
        rows.tofile(self.files[name])
        self.arrays[name] = (dtype, shape, count + len(rows))

    def close(self) -> FeatureStore:
        """Flush the arrays, write ``meta.json`` (the mark of a complete store) and open it for reading."""
        for f in self.files.values():
            f.close()
        counts = {count for _, _, count in self.arrays.values()}
        if len(counts) > 1:
            raise ValueError(f"StoreWriter: arrays of different lengths {self.arrays}")
        meta = {"key": self.key, "arrays": {n: {"dtype": d, "shape": list(s), "rows": c}
                                           for n, (d, s, c) in self.arrays.items()}}
        (self.folder / (META + ".tmp")).write_text(json.dumps(meta, indent=1))
        (self.folder / (META + ".tmp")).replace(self.folder / META)
        return FeatureStore(self.folder)


class FeatureStore:
    """A complete store written by :class:`StoreWriter`: arrays of equal length, read in chunks."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / META).read_text())
        self.folder = folder
        self.key: dict[str, Any] = meta["key"]
        self.arrays: dict[str, tuple[np.dtype[Any], tuple[int, ...]]] = {
            n: (np.dtype(a["dtype"]), tuple(a["shape"])) for n, a in meta["arrays"].items()}
        self.rows = next(iter(meta["arrays"].values()))["rows"] if meta["arrays"] else 0

    @staticmethod
    def complete(folder: Path) -> bool:
        """Whether ``folder`` holds a complete store."""
        return (folder / META).is_file()

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def row_shape(self, name: str) -> tuple[int, ...]:
        """The shape of one row of ``name``."""
        return self.arrays[name][1]

    def _row_bytes(self, name: str) -> int:
        dtype, shape = self.arrays[name]
        return int(dtype.itemsize * int(np.prod(shape, dtype=np.int64)))

    def read(self, name: str, start: int, stop: int) -> NDArray[Any]:
        """Rows ``start:stop`` of ``name``, a fresh array ``(stop - start, ...)``."""
        dtype, shape = self.arrays[name]
        start, stop = max(0, start), min(stop, self.rows)
        count = max(0, stop - start) * int(np.prod(shape, dtype=np.int64))
        flat = np.fromfile(self.folder / f"{name}.bin", dtype=dtype, count=count,
                           offset=start * self._row_bytes(name))
        return flat.reshape(-1, *shape)

    def take(self, name: str, rows: NDArray[np.integer]) -> NDArray[Any]:
        """The given rows of ``name``, in the given order (for small subsets: one read per run of rows)."""
        order = np.argsort(rows, kind="stable")
        sorted_rows = np.asarray(rows)[order]
        out = np.empty((len(rows), *self.arrays[name][1]), dtype=self.arrays[name][0])
        i = 0
        while i < len(sorted_rows):
            j = i + 1
            while j < len(sorted_rows) and sorted_rows[j] <= sorted_rows[j - 1] + 1:
                j += 1
            lo, hi = int(sorted_rows[i]), int(sorted_rows[j - 1]) + 1
            block = self.read(name, lo, hi)
            out[order[i:j]] = block[sorted_rows[i:j] - lo]
            i = j
        return out

    def chunk_rows(self, name: str, max_bytes: int) -> int:
        """How many rows of ``name`` fit in ``max_bytes`` (at least one)."""
        return max(1, max_bytes // max(1, self._row_bytes(name)))

    def chunks(self, name: str, rows_per_chunk: int, order: NDArray[np.integer] | None = None
               ) -> Iterator[tuple[int, NDArray[Any]]]:
        """``(first row, rows)`` of consecutive chunks, in ``order`` of chunk numbers (default: in order)."""
        count = -(-self.rows // rows_per_chunk)
        for c in (range(count) if order is None else order):
            start = int(c) * rows_per_chunk
            yield start, self.read(name, start, start + rows_per_chunk)
