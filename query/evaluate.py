"""One question to the engine, and its answer as the frame pages, exports and analyses read.

A :class:`Query` is PromQL over a range at a step; its answer is a pandas frame with one column per
series (named by the legend template) and one row per step where any series has a value.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from query.promql.answers import range_steps
from query.promql.engine import Evaluator, parse, reach_ms
from query.promql.selectors import Reader
from query.promql.values import NAME, BadData, Scalar, Vector, label, type_name
from tsdb.aggregator import SeriesInfo, empty_frame, grid_frame


@dataclass(frozen=True)
class Query:
    """PromQL evaluated from ``start`` to ``end`` every ``step`` (Unix seconds)."""

    promql: str
    start: float
    end: float
    step: float
    legend: str | None = None  # a column's name from its labels, e.g. "{mount}"
    name: str | None = None  # what a series without a metric name is called (its query's metric)
    deadline: float | None = None  # a time.monotonic() value the answer must be ready by

    def aligned(self) -> Query:
        """The same query evaluated at multiples of the step: the first at or after start, the last at or
        after end (so the newest samples are in), whatever the moment a viewer asks."""
        start = math.ceil(self.start / self.step - 1e-9) * self.step
        end = math.ceil(self.end / self.step - 1e-9) * self.step
        return replace(self, start=float(start), end=float(max(end, start)))


def frame_of(value, steps_ms: np.ndarray, query: Query) -> pd.DataFrame:
    """Turn an engine value over steps into the frame of a range answer (every series on the steps)."""
    if isinstance(value, Scalar):
        value = Vector([()], value.values[None, :], ~np.isnan(value.values)[None, :])
    if not isinstance(value, Vector):
        raise BadData(f"the query gives a {type_name(value)}; a panel draws an instant vector or a scalar")
    rows = [i for i in range(len(value)) if value.present[i].any()]
    if not rows:
        return empty_frame()
    rows.sort(key=lambda i: value.labels[i])
    infos = [
        SeriesInfo(
            label(value.labels[i], NAME) or query.name or "", {k: v for k, v in value.labels[i] if k != NAME}
        )
        for i in rows
    ]
    values = np.where(value.present[rows], value.values[rows], np.nan)
    return grid_frame(infos, steps_ms, values, query.legend, query.step)


def evaluate_range(reader: Reader, query: Query, held: HeldRanges | None = None, key=None) -> pd.DataFrame:
    """Answer a range query from the store through ``reader`` (the caller's view, with its budget).

    With ``held`` (and the ``key`` of the caller's view), the answer to the same query on the same step
    grid a moment ago is reused: only the steps samples stored since can change are evaluated.
    """
    start_ms, end_ms = round(query.start * 1000), round(query.end * 1000)
    steps = range_steps(start_ms, end_ms, max(round(query.step * 1000), 1))
    if held is None or key is None or not held.may_hold(query):
        return frame_of(Evaluator(reader, steps).eval(parse(query.promql)), steps, query)
    return frame_of(held.evaluate(reader, query, steps, key), steps, query)


# What makes a step's value depend on samples after it, or on the range asked: never held.
_NOT_STEPWISE = re.compile(r"@|offset\s*-")


@dataclass
class _Held:
    version: int
    steps: np.ndarray
    value: Vector | Scalar


class HeldRanges:
    """Range answers kept for the next ask of the same query on the same step grid (a live panel's
    next second, a dashboard's next refresh). Only the steps at or after the oldest sample stored
    since, the steps that are new, and the steps that read further back than the raw samples reach
    (where rollups answer, and which age as time goes) are evaluated; the others are taken from what
    is held. A step's value depends only on samples at or before it (queries with ``@`` or a negative
    ``offset`` are always evaluated whole), so the answer equals a whole evaluation.

    ``version()`` is the store's change count, ``changed_since(v)`` the oldest sample time stored
    since change ``v`` (None: not known any more).
    """

    def __init__(
        self,
        version: Callable[[], int],
        changed_since: Callable[[int], float | None],
        most: int = 512,
        most_values: int = 2_000_000,  # numbers held in all (9 bytes each with their presence)
    ):
        self.version = version
        self.changed_since = changed_since
        self.most = most
        self.most_values = most_values
        self.values = 0  # numbers held now
        self._held: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.reused = 0  # steps taken from held answers, for tests and /status

    def may_hold(self, query: Query) -> bool:
        return not _NOT_STEPWISE.search(query.promql)

    def evaluate(self, reader: Reader, query: Query, steps: np.ndarray, key) -> Vector | Scalar:
        key = (key, query.promql, int(steps[1] - steps[0]) if len(steps) > 1 else 0)
        version = self.version()  # before reading: samples stored meanwhile are evaluated again next time
        with self._lock:
            entry = self._held.get(key)
        expr = parse(query.promql)
        value = None
        if entry is not None:
            edge = reader.raw_only_from(reach_ms(expr)) * 1000
            first = int(np.searchsorted(steps, edge, side="left"))  # before it: evaluated every time
            last = self._first_new(entry, steps)  # from it: changed or new
            if first < last:
                offset = int(np.searchsorted(entry.steps, steps[0]))
                left = Evaluator(reader, steps[:first]).eval(expr) if first else None
                right = Evaluator(reader, steps[last:]).eval(expr) if last < len(steps) else None
                value = _spliced(entry.value, offset, first, last, left, right, len(steps))
                if value is not None:
                    self.reused += last - first
        if value is None:
            value = Evaluator(reader, steps).eval(expr)
        if isinstance(value, Vector | Scalar) and value.values.size <= self.most_values // 4:
            with self._lock:
                old = self._held.pop(key, None)
                self.values -= old.value.values.size if old is not None else 0
                self._held[key] = _Held(version, steps, value)
                self.values += value.values.size
                while len(self._held) > self.most or self.values > self.most_values:
                    _, gone = self._held.popitem(last=False)
                    self.values -= gone.value.values.size
        return value

    def _first_new(self, entry: _Held, steps: np.ndarray) -> int:
        """Return the first step the held answer cannot give as it is (0: none it can)."""
        held = entry.steps
        if len(held) < 2 or len(steps) < 2 or held[1] - held[0] != steps[1] - steps[0]:
            return 0
        if not held[0] <= steps[0] <= held[-1] or (steps[0] - held[0]) % (held[1] - held[0]):
            return 0
        since = self.changed_since(entry.version)
        if since is None or since == -math.inf:
            return 0
        redo = held[-1] + (held[1] - held[0])  # the steps past the held ones are new
        if math.isfinite(since):  # a sample at t changes the steps at or after t
            redo = min(redo, math.floor(since * 1000) - 1)
        return int(np.searchsorted(steps, redo, side="left"))


def _spliced(held, offset: int, first: int, last: int, left, right, steps: int) -> Vector | Scalar | None:
    """Return ``left`` over the first ``first`` steps, the held value's steps ``first`` to ``last``
    (from ``offset`` in it), and ``right`` over the rest: ``steps`` in all. None when the parts are
    not of one type."""
    parts = [(left, 0, first), (right, last, steps)]
    if any(part is not None and type(part) is not type(held) for part, _, _ in parts):
        return None
    if isinstance(held, Scalar):
        values = np.empty(steps)
        values[first:last] = held.values[offset + first : offset + last]
        for part, lo, hi in parts:
            if part is not None:
                values[lo:hi] = part.values
        return Scalar(values)
    if not isinstance(held, Vector):
        return None
    rows = {labels: i for i, labels in enumerate(held.labels)}
    labels = list(held.labels)
    for part, _, _ in parts:
        for lab in part.labels if part is not None else ():
            if lab not in rows:
                rows[lab] = len(labels)
                labels.append(lab)
    values = np.full((len(labels), steps), np.nan)
    present = np.zeros((len(labels), steps), dtype=bool)
    values[: len(held), first:last] = held.values[:, offset + first : offset + last]
    present[: len(held), first:last] = held.present[:, offset + first : offset + last]
    for part, lo, hi in parts:
        if part is not None and len(part):
            at = [rows[lab] for lab in part.labels]
            values[at, lo:hi] = part.values
            present[at, lo:hi] = part.present
    return Vector(labels, values, present)


def evaluate_instant(reader: Reader, promql: str, at: float) -> list[tuple[SeriesInfo, float]]:
    """Answer an instant query: each series' value at one time."""
    steps = np.array([round(at * 1000)], dtype=np.int64)
    value = Evaluator(reader, steps).eval(parse(promql))
    if isinstance(value, Scalar):
        return [(SeriesInfo("", {}), float(value.values[0]))]
    if not isinstance(value, Vector):
        raise BadData(f"the query gives a {type_name(value)}; an instant vector or a scalar is needed")
    return [
        (SeriesInfo(label(lab, NAME), {k: v for k, v in lab if k != NAME}), float(v[0]))
        for lab, v, ok in zip(value.labels, value.values, value.present)
        if ok[0]
    ]
