"""One question to the engine, and its answer as the frame pages, exports and analyses read.

A :class:`Query` is PromQL over a range at a step; its answer is a pandas frame with one column per
series (named by the legend template) and one row per step where any series has a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from query.promql.answers import range_steps
from query.promql.engine import Evaluator, parse
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


def evaluate_range(reader: Reader, query: Query) -> pd.DataFrame:
    """Answer a range query from the store through ``reader`` (the caller's view, with its budget)."""
    start_ms, end_ms = round(query.start * 1000), round(query.end * 1000)
    steps = range_steps(start_ms, end_ms, max(round(query.step * 1000), 1))
    value = Evaluator(reader, steps).eval(parse(query.promql))
    return frame_of(value, steps, query)


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
