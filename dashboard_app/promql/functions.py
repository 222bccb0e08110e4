"""PromQL's functions, computed as Prometheus computes them (its extrapolation in ``rate``, its
regression in ``deriv`` and ``predict_linear``, its interpolation in ``histogram_quantile``).

A range function sees, at each evaluation time ``t``, the samples of ``[t - offset - range, t - offset]``
(both ends included, as Prometheus 2 has it) and gives one value, or none.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dashboard_app.promql.values import Labels, Vector, drop_name, label


def windows(
    ts: np.ndarray, steps: np.ndarray, range_ms: int, offset_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per step, the index of the first sample of its window and one past the last."""
    end = steps - offset_ms
    return np.searchsorted(ts, end - range_ms, "left"), np.searchsorted(ts, end, "right")


def extrapolated(
    ts: np.ndarray,
    val: np.ndarray,
    steps: np.ndarray,
    range_ms: int,
    offset_ms: int,
    counter: bool,
    per_second: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``rate``, ``increase`` and ``delta`` at every step: (values, present)."""
    lo, hi = windows(ts, steps, range_ms, offset_ms)
    n = hi - lo
    ok = n >= 2
    first, last = np.minimum(lo, len(ts) - 1), np.maximum(hi - 1, 0)
    if len(ts) == 0:
        return np.zeros(len(steps)), ok
    v0, v1 = val[first], val[last]
    t0, t1 = ts[first], ts[last]
    with np.errstate(invalid="ignore", divide="ignore"):
        result = v1 - v0
        if counter:  # a drop is a reset: the value before it is added back
            drops = np.zeros(len(val))
            drops[1:] = np.where(val[1:] < val[:-1], val[:-1], 0.0)
            resets = np.cumsum(drops)
            result = result + (resets[last] - resets[first])
        range_start = (steps - offset_ms - range_ms).astype(np.float64)
        range_end = (steps - offset_ms).astype(np.float64)
        to_start = (t0 - range_start) / 1000.0
        to_end = (range_end - t1) / 1000.0
        sampled = (t1 - t0) / 1000.0
        average = sampled / np.maximum(n - 1, 1)
        if counter:
            to_zero = np.where((result > 0) & (v0 >= 0), sampled * (v0 / result), np.inf)
            to_start = np.minimum(to_start, to_zero)
        threshold = average * 1.1
        interval = sampled + np.where(to_start < threshold, to_start, average / 2)
        interval = interval + np.where(to_end < threshold, to_end, average / 2)
        result = result * (interval / sampled)
        if per_second:
            result = result / (range_ms / 1000.0)
    return result, ok


def instant_rate(ts, val, steps, range_ms, offset_ms, per_second: bool) -> tuple[np.ndarray, np.ndarray]:
    """``irate`` and ``idelta``: from the last two samples of each window."""
    lo, hi = windows(ts, steps, range_ms, offset_ms)
    ok = hi - lo >= 2
    if len(ts) < 2:
        return np.zeros(len(steps)), ok
    last, prev = np.maximum(hi - 1, 1), np.maximum(hi - 2, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if per_second:
            result = np.where(val[last] < val[prev], val[last], val[last] - val[prev])
            interval = (ts[last] - ts[prev]) / 1000.0
            ok &= interval != 0
            result = result / interval
        else:
            result = val[last] - val[prev]
    return result, ok


def _regression(t: np.ndarray, v: np.ndarray, intercept_ms: float) -> tuple[float, float]:
    """Prometheus' least-squares line through samples: (slope per second, value at ``intercept_ms``)."""
    if (v == v[0]).all():
        return (math.nan, math.nan) if math.isinf(v[0]) else (0.0, float(v[0]))
    x = (t - intercept_ms) / 1000.0
    n = len(v)
    sum_x, sum_y = x.sum(), v.sum()
    cov = (x * v).sum() - sum_x * sum_y / n
    var = (x * x).sum() - sum_x * sum_x / n
    slope = cov / var
    return float(slope), float(sum_y / n - slope * sum_x / n)


def quantile(q: float, values: np.ndarray) -> float:
    """The φ-quantile of values, interpolating between the two nearest ranks (as Prometheus)."""
    if len(values) == 0:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = np.sort(values)
    rank = q * (len(ordered) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def _min(v):
    return float(np.nan if np.isnan(v).all() else np.nanmin(v))


def _max(v):
    return float(np.nan if np.isnan(v).all() else np.nanmax(v))


def _stdvar(v):
    return float(np.mean((v - v.mean()) ** 2))


def _changes(v):
    a, b = v[1:], v[:-1]
    return float(((a != b) & ~(np.isnan(a) & np.isnan(b))).sum())


def _resets(v):
    return float((v[1:] < v[:-1]).sum())


# name -> f(samples' values, samples' times, evaluation ms, parameter) for one window with samples
WINDOWED: dict[str, Callable[[np.ndarray, np.ndarray, int, float], float]] = {
    "avg_over_time": lambda v, t, at, p: float(v.mean()),
    "sum_over_time": lambda v, t, at, p: float(v.sum()),
    "count_over_time": lambda v, t, at, p: float(len(v)),
    "min_over_time": lambda v, t, at, p: _min(v),
    "max_over_time": lambda v, t, at, p: _max(v),
    "last_over_time": lambda v, t, at, p: float(v[-1]),
    "present_over_time": lambda v, t, at, p: 1.0,
    "stddev_over_time": lambda v, t, at, p: math.sqrt(_stdvar(v)),
    "stdvar_over_time": lambda v, t, at, p: _stdvar(v),
    "quantile_over_time": lambda v, t, at, p: quantile(p, v),
    "changes": lambda v, t, at, p: _changes(v),
    "resets": lambda v, t, at, p: _resets(v),
    "deriv": lambda v, t, at, p: _regression(t, v, float(t[0]))[0],
    "predict_linear": lambda v, t, at, p: (lambda s: s[1] + s[0] * p)(_regression(t, v, float(at))),
}
NEEDS_TWO = {"deriv", "predict_linear"}


def windowed(
    name: str,
    ts,
    val,
    steps,
    range_ms,
    offset_ms,
    params: np.ndarray,
    check: Callable[[], None] = lambda: None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a per-window function at every step (``check`` raises when the query must stop)."""
    lo, hi = windows(ts, steps, range_ms, offset_ms)
    least = 2 if name in NEEDS_TWO else 1
    out = np.zeros(len(steps))
    ok = hi - lo >= least
    f = WINDOWED[name]
    with np.errstate(invalid="ignore", divide="ignore"):
        for n, i in enumerate(np.flatnonzero(ok).tolist()):
            if n % 256 == 255:
                check()
            out[i] = f(val[lo[i] : hi[i]], ts[lo[i] : hi[i]], int(steps[i]), float(params[i]))
    return out, ok


def _round(v: np.ndarray, to: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        inverse = 1.0 / to
        return np.floor(v * inverse + 0.5) / inverse


# name -> f(values, *scalar parameters) for functions applied to each sample of an instant vector
ELEMENTWISE: dict[str, Callable[..., np.ndarray]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sgn": np.sign,
    "round": lambda v, to=None: _round(v, to if to is not None else 1.0),
    "clamp_min": lambda v, lo: np.where(np.isnan(v), v, np.maximum(v, lo)),
    "clamp_max": lambda v, hi: np.where(np.isnan(v), v, np.minimum(v, hi)),
    "clamp": lambda v, lo, hi: np.where(np.isnan(v), v, np.minimum(np.maximum(v, lo), hi)),
}


def _bucket_quantile(q: float, bounds: np.ndarray, counts: np.ndarray) -> float:
    """Prometheus' bucketQuantile over buckets sorted by upper bound."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(bounds) == 0 or bounds[-1] != math.inf:
        return math.nan
    # Buckets with the same bound are one bucket; counts never fall as the bound rises.
    uniq, first = np.unique(bounds, return_index=True)
    if len(uniq) != len(bounds):
        counts = np.add.reduceat(counts, first)
        bounds = uniq
    counts = np.maximum.accumulate(counts)
    if len(bounds) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    b = int(np.searchsorted(counts[:-1], rank, "left"))
    if b == len(bounds) - 1:
        return float(bounds[-2])
    if b == 0 and bounds[0] <= 0:
        return float(bounds[0])
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return float(start + (end - start) * (rank / count))


def histogram_quantile(q: np.ndarray, vector: Vector) -> Vector:
    """``histogram_quantile(φ, buckets)``: one series per label set without ``le``, at every step."""
    groups: dict[Labels, list[tuple[float, int]]] = {}
    for i, labels in enumerate(vector.labels):
        try:
            bound = float(label(labels, "le"))
        except ValueError:
            continue
        key = tuple(p for p in drop_name(labels) if p[0] != "le")
        groups.setdefault(key, []).append((bound, i))
    steps = vector.values.shape[1]
    keys, values, present = [], [], []
    for key, members in groups.items():
        members.sort()
        bounds = np.array([b for b, _ in members])
        rows = [i for _, i in members]
        here = vector.present[rows]
        row_values, row_ok = np.zeros(steps), here.any(axis=0)
        for s in np.flatnonzero(row_ok).tolist():
            keep = here[:, s]
            row_values[s] = _bucket_quantile(float(q[s]), bounds[keep], vector.values[rows, s][keep])
        keys.append(key)
        values.append(row_values)
        present.append(row_ok)
    if not keys:
        return Vector.empty(steps)
    return Vector(keys, np.array(values), np.array(present))


KEEPS_NAME = {"last_over_time"}  # every other range function drops the metric name
