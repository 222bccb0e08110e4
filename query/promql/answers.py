"""Queries run and answered in the shapes of Prometheus' HTTP API (``/api/v1/query``, ``query_range``)."""

from __future__ import annotations

import numpy as np

from query.promql.engine import Evaluator, parse
from query.promql.selectors import Reader
from query.promql.values import MAX_POINTS, BadData, Matrix, Scalar, String, Vector, number, type_name


def moment(ms: int) -> float | int:
    """A time as Prometheus writes it: Unix seconds, with milliseconds only when there are some."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000.0


def instant(reader: Reader, query: str, at_ms: int) -> dict:
    """Evaluate a query at one time; return Prometheus' ``data`` object."""
    value = Evaluator(reader, np.array([at_ms], dtype=np.int64)).eval(parse(query))
    t = moment(at_ms)
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [t, number(float(value.values[0]))]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [t, value.value]}
    if isinstance(value, Matrix):
        return {
            "resultType": "matrix",
            "result": [
                {"metric": dict(lab), "values": [[moment(int(a)), number(float(b))] for a, b in zip(ts, val)]}
                for lab, ts, val in zip(value.labels, value.times, value.values)
            ],
        }
    return {
        "resultType": "vector",
        "result": [
            {"metric": dict(lab), "value": [t, number(float(v[0]))]}
            for lab, v, ok in zip(value.labels, value.values, value.present)
            if ok[0]
        ],
    }


def range_steps(start_ms: int, end_ms: int, step_ms: int) -> np.ndarray:
    """The evaluation times of a range query: from start, every step, up to end (as Prometheus)."""
    if end_ms < start_ms:
        raise BadData('invalid parameter "end": end timestamp must not be before start time')
    if step_ms <= 0:
        raise BadData(
            'invalid parameter "step": zero or negative query resolution step widths are not accepted. '
            "Try a positive integer"
        )
    if (end_ms - start_ms) / step_ms > MAX_POINTS:
        raise BadData(
            f"exceeded maximum resolution of {MAX_POINTS:,} points per timeseries. Try decreasing the query "
            "resolution (?step=XX)"
        )
    return np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)


def over_range(reader: Reader, query: str, start_ms: int, end_ms: int, step_ms: int) -> dict:
    """Evaluate a query at every step of a range; return Prometheus' ``data`` object (a matrix)."""
    steps = range_steps(start_ms, end_ms, step_ms)
    value = Evaluator(reader, steps).eval(parse(query))
    times = [moment(int(s)) for s in steps]
    if isinstance(value, Scalar):
        value = Vector([()], value.values[None, :], np.ones((1, len(steps)), dtype=bool))
    if not isinstance(value, Vector):
        raise BadData(
            f'invalid expression type "{type_name(value)}" for range query, must be Scalar or instant Vector'
        )
    result = []
    for lab, values, present in sorted(
        zip(value.labels, value.values, value.present), key=lambda row: row[0]
    ):
        points = [[times[i], number(float(values[i]))] for i in np.flatnonzero(present).tolist()]
        if points:
            result.append({"metric": dict(lab), "values": points})
    return {"resultType": "matrix", "result": result}
