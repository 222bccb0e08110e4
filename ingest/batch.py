"""A request's samples in columns, as every protocol adapter hands them to the one check and append.

Each series of the request is a key (name, labels as sent), each sample an index into the keys with a
time and a value in arrays, so the check looks at each series once and at the values all at once, and
the store looks each series up once. Where a sample stood in the body is only worked out for the
sample a refusal names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tsdb.metrics import Labels


@dataclass(frozen=True)
class Batch:
    """The samples of one request: ``keys[rows[k]]`` is sample k's series, at ``times[k]`` (Unix
    seconds) with ``values[k]``. ``where(k)`` names where sample k stood in the body."""

    keys: list[tuple[str, Labels]]
    rows: np.ndarray
    times: np.ndarray
    values: np.ndarray
    where: Callable[[int], str]

    def __len__(self) -> int:
        return len(self.rows)

    def first_of(self, row: int) -> int:
        """Return the index of the first sample of series ``row``."""
        return int(np.flatnonzero(self.rows == row)[0])


class Rows:
    """Build a Batch one sample at a time (for bodies that are read sample by sample anyway)."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, Labels]] = []
        self._index: dict[tuple[str, Labels], int] = {}
        self.rows: list[int] = []
        self.times: list[float] = []
        self.values: list[float] = []
        self.wheres: list[str] = []

    def add(self, name: str, labels: dict[str, str], value: float, at: float, where: str) -> None:
        """Add one sample of series (name, labels) at ``at`` (Unix seconds), from ``where`` in the body."""
        key = (name, tuple(sorted(labels.items())))
        row = self._index.get(key)
        if row is None:
            row = self._index[key] = len(self.keys)
            self.keys.append(key)
        self.rows.append(row)
        self.times.append(at)
        self.values.append(value)
        self.wheres.append(where)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self) -> Batch:
        return Batch(
            self.keys,
            np.asarray(self.rows, dtype=np.int64),
            np.asarray(self.times, dtype=np.float64),
            np.asarray(self.values, dtype=np.float64),
            self.wheres.__getitem__,
        )
