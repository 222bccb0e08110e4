"""What PromQL expressions evaluate to over a range of evaluation times, and the errors they raise.

An instant vector over ``S`` steps is a list of series, each with its labels and a row of values and of
presence (a series has a value at some steps and none at others). A range vector keeps each series' raw
samples; functions slide their window over them, step by step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs, __name__ among them
NAME = "__name__"
LOOKBACK_MS = 300_000  # Prometheus' lookback: an instant selector takes the newest sample of 5 minutes
MAX_POINTS = 11_000  # points per series a range query may ask for, as Prometheus
MAX_TIME = 1e13  # seconds either side of 1970 a query time may be (about the year 318,000)


class BadData(ValueError):
    """An expression or parameter Prometheus would refuse as bad_data (HTTP 400)."""


class Execution(ValueError):
    """An expression that fails while it runs, as Prometheus' ``execution`` errors (HTTP 422)."""


class Timeout(RuntimeError):
    """A query stopped at its deadline, as Prometheus' ``timeout`` errors (HTTP 503)."""


@dataclass
class Budget:
    """What one query may spend: time until a deadline, and samples held (``query.max_samples``).

    Samples are counted as they are loaded and before an instant vector of series × steps is made,
    so a query over the budget is refused before it takes the memory, and the deadline is checked
    while it runs, not only between queries.
    """

    max_samples: int = 5_000_000
    timeout: float = math.inf
    deadline: float | None = None  # a time.monotonic() value: the query gate's, else timeout from now
    used: int = 0

    def __post_init__(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout

    def spend(self, samples: int) -> None:
        """Count samples about to be held; raise Execution past the budget, Timeout past the deadline."""
        self.used += samples
        if self.used > self.max_samples:
            raise Execution(
                f"query processing would load too many samples into memory: more than {self.max_samples:,} "
                "(query.max_samples); narrow the selector, shorten the range or raise the step"
            )
        self.check()

    def check(self) -> None:
        """Raise Timeout once the deadline has passed."""
        if time.monotonic() > self.deadline:
            raise Timeout(f"query timed out after {self.timeout:g} s (query.timeout)")


def number(value: float) -> str:
    """A sample value as Prometheus writes it: shortest exact decimal, NaN, +Inf or -Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)  # the shortest exact decimal, a tenth of the time format_float_positional takes
    if "e" in text:
        return np.format_float_positional(value, unique=True, trim="-")
    return text[:-2] if text.endswith(".0") else text


def drop_name(labels: Labels) -> Labels:
    return tuple(p for p in labels if p[0] != NAME)


def label(labels: Labels, name: str) -> str:
    for key, value in labels:
        if key == name:
            return value
    return ""


@dataclass
class Vector:
    """An instant vector at every step: ``values`` and ``present`` are (series, steps) arrays."""

    labels: list[Labels]
    values: np.ndarray
    present: np.ndarray

    @classmethod
    def empty(cls, steps: int) -> Vector:
        return cls([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool))

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: list[int] | np.ndarray) -> Vector:
        rows = np.asarray(rows, dtype=np.int64)
        return Vector([self.labels[i] for i in rows.tolist()], self.values[rows], self.present[rows])

    def relabel(self, labels: list[Labels]) -> Vector:
        """Return the same values under new labels; series that now share labels are merged, unless they
        have values at the same step (Prometheus' "vector cannot contain metrics with the same labelset")."""
        groups: dict[Labels, list[int]] = {}
        for i, key in enumerate(labels):
            groups.setdefault(key, []).append(i)
        if len(groups) == len(labels):
            return Vector(labels, self.values, self.present)
        keys, values, present = [], [], []
        for key, rows in groups.items():
            if len(rows) > 1 and (self.present[rows].sum(axis=0) > 1).any():
                raise Execution("vector cannot contain metrics with the same labelset")
            here = self.present[rows]
            keys.append(key)
            values.append(np.where(here, self.values[rows], 0.0).sum(axis=0))
            present.append(here.any(axis=0))
        return Vector(keys, np.array(values), np.array(present))


@dataclass
class Matrix:
    """A range vector: each series' samples (ms, values), staleness markers left out.

    At each evaluation step a range function sees the samples of ``[ends - range_ms, ends]``: ``ends``
    are the steps less the selector's offset, or its ``@`` time.
    """

    labels: list[Labels]
    times: list[np.ndarray]  # int64 milliseconds, ascending
    values: list[np.ndarray]
    range_ms: int
    ends: np.ndarray  # int64 milliseconds, one per evaluation step


@dataclass
class Scalar:
    """A number at every step."""

    values: np.ndarray


@dataclass
class String:
    value: str


Value = Vector | Matrix | Scalar | String


def type_name(value: Value) -> str:
    return {Vector: "instant vector", Matrix: "range vector", Scalar: "scalar", String: "string"}[type(value)]
