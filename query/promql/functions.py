"""PromQL's functions, computed as Prometheus computes them (its extrapolation in ``rate``, its
regression in ``deriv`` and ``predict_linear``, its interpolation in ``histogram_quantile``).

A range function sees, at each evaluation time, the samples of ``[end - range, end]`` where ``end`` is the
time minus the selector's offset (or its ``@`` time), both ends included as Prometheus 2 has it, and
gives one value, or none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from query.promql.values import NAME, BadData, Execution, Labels, Vector, drop_name, label
from tsdb.metrics import LABEL_NAME
from tsdb.selector import SelectorError, compile_regex


def windows(ts: np.ndarray, ends: np.ndarray, range_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Return, per step, the index of the first sample of its window and one past the last."""
    return np.searchsorted(ts, ends - range_ms, "left"), np.searchsorted(ts, ends, "right")


def extrapolated(
    times: list[np.ndarray],
    values: list[np.ndarray],
    ends: np.ndarray,
    range_ms: int,
    counter: bool,
    per_second: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``rate``, ``increase`` and ``delta`` of every series at every step: (series, steps) values and
    presence. The series' samples are laid end to end so the arithmetic runs once for all of them."""
    n, steps = len(times), len(ends)
    sizes = np.array([len(t) for t in times], dtype=np.int64)
    if n == 0 or not sizes.any():
        return np.zeros((n, steps)), np.zeros((n, steps), dtype=bool)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    ts, val = np.concatenate(times), np.concatenate(values)
    lo = np.empty((n, steps), dtype=np.int64)
    hi = np.empty((n, steps), dtype=np.int64)
    for i, t in enumerate(times):
        lo[i], hi[i] = windows(t, ends, range_ms)
    count = hi - lo
    ok = count >= 2
    top = np.maximum(starts + sizes - 1, starts)[:, None]
    first = np.minimum(lo + starts[:, None], top)
    last = np.minimum(np.maximum(hi - 1, 0) + starts[:, None], top)
    v0, v1 = val[first], val[last]
    t0, t1 = ts[first], ts[last]
    with np.errstate(invalid="ignore", divide="ignore"):
        result = v1 - v0
        if counter:  # a drop is a reset: the value before it is added back (never across two series)
            drops = np.zeros(len(val))
            drops[1:] = np.where(val[1:] < val[:-1], val[:-1], 0.0)
            drops[starts] = 0.0
            resets = np.cumsum(drops)
            result = result + (resets[last] - resets[first])
        range_start = (ends - range_ms).astype(np.float64)
        range_end = ends.astype(np.float64)
        to_start = (t0 - range_start) / 1000.0
        to_end = (range_end - t1) / 1000.0
        sampled = (t1 - t0) / 1000.0
        average = sampled / np.maximum(count - 1, 1)
        if counter:
            to_zero = np.where((result > 0) & (v0 >= 0), sampled * (v0 / result), np.inf)
            to_start = np.minimum(to_start, to_zero)
        threshold = average * 1.1
        interval = sampled + np.where(to_start < threshold, to_start, average / 2)
        interval = interval + np.where(to_end < threshold, to_end, average / 2)
        factor = interval / sampled  # in Prometheus' order of operations, to the last bit
        if per_second:
            factor = factor / (range_ms / 1000.0)
        result = result * factor
    return result, ok


def instant_rate(ts, val, ends, range_ms, per_second: bool) -> tuple[np.ndarray, np.ndarray]:
    """``irate`` and ``idelta``: from the last two samples of each window."""
    lo, hi = windows(ts, ends, range_ms)
    ok = hi - lo >= 2
    if len(ts) < 2:
        return np.zeros(len(ends)), ok
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
    "holt_winters": lambda v, t, at, p: _holt_winters(v, float(p[0]), float(p[1])),
}
NEEDS_TWO = {"deriv", "predict_linear", "holt_winters"}


def _holt_winters(v: np.ndarray, sf: float, tf: float) -> float:
    """Prometheus 2.42's double exponential smoothing: the smoothed value at the window's last sample."""
    s0, s1, b = 0.0, float(v[0]), float(v[1] - v[0])
    for i in range(1, len(v)):
        x = sf * v[i]
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        s0, s1 = s1, x + (1 - sf) * (s1 + b)
    return s1


def check_smoothing(params: np.ndarray) -> None:
    """Refuse holt_winters factors outside (0, 1), as Prometheus does."""
    for value, what in ((params[:, 0], "smoothing"), (params[:, 1], "trend")):
        bad = ~((value > 0) & (value < 1))
        if bad.any():
            raise Execution(f"invalid {what} factor. Expected: 0 < {what[0]}f < 1, got: {value[bad][0]:f}")


def _reduce_windows(ufunc, val: np.ndarray, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Reduce every non-empty window [lo, hi) at once (windows may overlap)."""
    out = np.zeros(len(lo))
    padded = np.append(val, 0.0)  # an index one past the last sample stays in bounds
    bounds = np.column_stack([lo[ok], hi[ok]]).ravel()
    out[ok] = ufunc.reduceat(padded, bounds)[::2]
    return out


# Functions of a whole window computed for every step at once (the same values as WINDOWED's).
WHOLE_WINDOW: dict[str, Callable[..., np.ndarray]] = {
    "sum_over_time": lambda v, lo, hi, ok: _reduce_windows(np.add, v, lo, hi, ok),
    "count_over_time": lambda v, lo, hi, ok: (hi - lo).astype(np.float64),
    "avg_over_time": lambda v, lo, hi, ok: _reduce_windows(np.add, v, lo, hi, ok) / np.maximum(hi - lo, 1),
    "min_over_time": lambda v, lo, hi, ok: _reduce_windows(np.fmin, v, lo, hi, ok),
    "max_over_time": lambda v, lo, hi, ok: _reduce_windows(np.fmax, v, lo, hi, ok),
    "last_over_time": lambda v, lo, hi, ok: v[np.maximum(hi - 1, 0)],
    "present_over_time": lambda v, lo, hi, ok: np.ones(len(lo)),
}


def windowed(
    name: str,
    ts,
    val,
    ends,
    range_ms,
    steps,
    params: np.ndarray,
    check: Callable[[], None] = lambda: None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a per-window function at every step (``check`` raises when the query must stop).

    ``steps`` are the evaluation times (``predict_linear`` reads its line there); ``ends`` the windows'.
    """
    lo, hi = windows(ts, ends, range_ms)
    least = 2 if name in NEEDS_TWO else 1
    ok = hi - lo >= least
    if name in WHOLE_WINDOW and ok.any():
        return WHOLE_WINDOW[name](val, lo, hi, ok), ok
    out = np.zeros(len(ends))
    f = WINDOWED[name]
    with np.errstate(invalid="ignore", divide="ignore"):
        for n, i in enumerate(np.flatnonzero(ok).tolist()):
            if n % 256 == 255:
                check()
            out[i] = f(val[lo[i] : hi[i]], ts[lo[i] : hi[i]], int(steps[i]), params[i])
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
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "deg": np.degrees,
    "rad": np.radians,
}


def _calendar(seconds: np.ndarray) -> dict[str, np.ndarray]:
    """The UTC calendar fields of Unix times, as Go's time package gives them (NaN stays NaN)."""
    bad = ~np.isfinite(seconds) | (np.abs(seconds) > 1e15)
    whole = np.where(bad, 0, np.trunc(np.nan_to_num(seconds))).astype(np.int64).astype("datetime64[s]")
    day = whole.astype("datetime64[D]")
    month = whole.astype("datetime64[M]")
    year = whole.astype("datetime64[Y]")
    in_day = (whole - day).astype(np.int64)
    fields = {
        "year": year.astype(np.int64) + 1970,
        "month": month.astype(np.int64) % 12 + 1,
        "day_of_month": (day - month).astype(np.int64) + 1,
        "day_of_year": (day - year).astype(np.int64) + 1,
        "day_of_week": (day.astype(np.int64) + 4) % 7,  # 1970-01-01 was a Thursday; Sunday is 0
        "days_in_month": ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(
            np.int64
        ),
        "hour": in_day // 3600,
        "minute": in_day % 3600 // 60,
    }
    return {k: np.where(bad, np.nan, v.astype(np.float64)) for k, v in fields.items()}


DATE_FUNCTIONS = (
    "year",
    "month",
    "day_of_month",
    "day_of_year",
    "day_of_week",
    "days_in_month",
    "hour",
    "minute",
)


def calendar(name: str, seconds: np.ndarray) -> np.ndarray:
    """``hour``, ``day_of_week``, ... of Unix times."""
    return _calendar(seconds)[name]


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


def _valid_label_name(name: str, function: str) -> None:
    if not (LABEL_NAME.fullmatch(name) or name == NAME):
        raise BadData(f'invalid destination label name in {function}(): "{name}"')


_EXPAND = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


def _expand(template: str, match) -> str:
    """Go's regexp Expand: ``$1``, ``${1}``, ``$name``; a group that does not exist is empty."""

    def one(found) -> str:
        if found.group(0) == "$$":
            return "$"
        key = found.group(1) or found.group(2)
        try:
            group = match.group(int(key)) if key.isdigit() else match.group(key)
        except (IndexError, KeyError, ValueError):
            return ""
        return group or ""

    return _EXPAND.sub(one, template)


def _relabelled(vector: Vector, labels: list[Labels]) -> Vector:
    return Vector(labels, vector.values, vector.present).relabel(labels)


def label_replace(vector: Vector, dst: str, replacement: str, src: str, pattern: str) -> Vector:
    """``label_replace``: where ``src``'s value matches the whole pattern, ``dst`` becomes the replacement."""
    try:
        regex = compile_regex(src, "^(?:" + pattern + ")$")
    except SelectorError as exc:
        raise BadData(f"invalid regular expression in label_replace(): {pattern} ({exc})") from None
    _valid_label_name(dst, "label_replace")
    out = []
    for labels in vector.labels:
        found = regex.search(label(labels, src))
        if found is None:
            out.append(labels)
            continue
        value = _expand(replacement, found)
        kept = {k: v for k, v in labels if k != dst}
        if value:
            kept[dst] = value
        out.append(tuple(sorted(kept.items())))
    return _relabelled(vector, out)


def label_join(vector: Vector, dst: str, separator: str, sources: list[str]) -> Vector:
    """``label_join``: ``dst`` becomes the sources' values joined by the separator."""
    for name in sources:
        if not (LABEL_NAME.fullmatch(name) or name == NAME):
            raise BadData(f'invalid source label name in label_join(): "{name}"')
    _valid_label_name(dst, "label_join")
    out = []
    for labels in vector.labels:
        value = separator.join(label(labels, name) for name in sources)
        kept = {k: v for k, v in labels if k != dst}
        if value:
            kept[dst] = value
        out.append(tuple(sorted(kept.items())))
    return _relabelled(vector, out)


OVER_BUCKETS = ("sum_over_time", "count_over_time", "avg_over_time", "min_over_time", "max_over_time")


def over_buckets(name: str, b, ends: np.ndarray, range_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """A window function from spans' summaries (raw samples and rollup buckets), at every step."""
    lo, hi = windows(b.times, ends, range_ms)
    ok = hi > lo
    if not ok.any():
        return np.zeros(len(ends)), ok
    if name == "min_over_time":
        return _reduce_windows(np.fmin, b.min, lo, hi, ok), ok
    if name == "max_over_time":
        return _reduce_windows(np.fmax, b.max, lo, hi, ok), ok
    counts = _reduce_windows(np.add, b.count, lo, hi, ok)
    if name == "count_over_time":
        return counts, ok
    sums = _reduce_windows(np.add, b.sum, lo, hi, ok)
    if name == "sum_over_time":
        return sums, ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / np.where(ok, counts, 1.0), ok
