"""Turn store tiers into pandas frames: range, step, aggregation, rate and a point cap."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from tsdb.selector import Selector, parse_selector
from tsdb.store import Series, Store, Tier

AGGREGATIONS = ("avg", "min", "max", "sum", "last", "count", "p50", "p95", "p99", "rate")
_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


class QueryError(ValueError):
    """A query that cannot be answered as asked; the message says what is allowed."""


class QueryTimeout(QueryError):
    """A query that ran past its deadline; what it had read is dropped."""


@dataclass(frozen=True)
class SeriesInfo:
    """Which series a frame column holds."""

    name: str
    labels: dict[str, str]


def empty_frame() -> pd.DataFrame:
    """Return a frame with no rows and no series, indexed by UTC time."""
    return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="time"))


def column_label(info: SeriesInfo, legend: str | None, many_names: bool) -> str:
    """Name a column from a legend template such as ``{core}``, or from the labels."""
    labels = info.labels
    if legend:
        try:
            return legend.format_map(_Blank(labels))
        except (ValueError, IndexError):
            return legend
    if not labels:
        return info.name
    text = (
        ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if len(labels) > 1
        else next(iter(labels.values()))
    )
    return f"{info.name} {text}" if many_names else text


def check_query(agg: str, start: float, end: float, step: float) -> None:
    """Raise QueryError naming what is wrong with a range query's aggregation, range or step."""
    if agg not in AGGREGATIONS:
        raise QueryError(f"aggregation {agg!r} is not one of {', '.join(AGGREGATIONS)}")
    if not (math.isfinite(step) and step > 0):
        raise QueryError("step must be a positive number of seconds")
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        raise QueryError("end must not be before start")


class Columns(dict):
    """A frame's column -> SeriesInfo, shared by every frame derived from it.

    pandas deep-copies ``attrs`` into each frame and column taken from a frame: a plain dict of
    thousands of series made reading every column quadratic (1,000 series took 54 s). The mapping is
    never changed once made, so a copy is the mapping itself.
    """

    def __deepcopy__(self, memo) -> Columns:
        return self

    def __copy__(self) -> Columns:
        return self


def series_frame(
    columns: list[tuple[SeriesInfo, np.ndarray, np.ndarray]], legend: str | None, step: float
) -> pd.DataFrame:
    """Return the frame a range query answers: one column per series, named by the legend."""
    if not columns:
        return empty_frame()
    many_names = len({info.name for info, _, _ in columns}) > 1
    infos = [info for info, _, _ in columns]
    labels = _unique(_told_apart([column_label(info, legend, many_names) for info in infos], infos))
    frame = _wide(labels, [(t, v) for _, t, v in columns])
    frame.attrs["series"] = Columns({lab: info for lab, (info, _, _) in zip(labels, columns)})
    frame.attrs["step"] = step
    return frame


def grid_frame(
    infos: list[SeriesInfo], times_ms: np.ndarray, values: np.ndarray, legend: str | None, step: float
) -> pd.DataFrame:
    """The frame of series that share one grid of times: ``values`` is (series, times), NaN where a
    series has no value; rows where no series has one are left out."""
    if not infos:
        return empty_frame()
    many_names = len({info.name for info in infos}) > 1
    labels = _unique(_told_apart([column_label(info, legend, many_names) for info in infos], infos))
    keep = ~np.isnan(values).all(axis=0)
    frame = pd.DataFrame(
        values[:, keep].T, index=utc_index(times_ms[keep]), columns=pd.Index(labels, dtype=object)
    )
    frame.attrs["series"] = Columns(dict(zip(labels, infos)))
    frame.attrs["step"] = step
    return frame


def utc_index(times_ms: np.ndarray) -> pd.DatetimeIndex:
    """A UTC time index from integer milliseconds, made without pandas' parsing (a tenth of the cost)."""
    stamps = np.asarray(times_ms, dtype=np.int64).astype("datetime64[ms]")
    array = pd.arrays.DatetimeArray._simple_new(stamps, dtype=pd.DatetimeTZDtype("ms", "UTC"))
    return pd.DatetimeIndex(array, name="time")


def cap_points(
    t: np.ndarray, v: np.ndarray, start: float, end: float, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most max_points: beyond that, the lowest and the highest point of each bucket."""
    if len(t) <= max_points:
        return t, v
    width = max((end - start) / (max_points // 2), 1e-9)
    bucket = np.floor((t - start) / width)
    frame = pd.DataFrame({"b": bucket, "v": v})
    grouped = frame.groupby("b")["v"]
    keep = np.union1d(grouped.idxmin().to_numpy(), grouped.idxmax().to_numpy())
    return t[keep], v[keep]


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


class Aggregator:
    """Answer range queries from the coarsest store tier that fits the step."""

    def __init__(self, store: Store, max_points: int = 2000):
        self.store = store
        self.max_points = max_points

    def plan(self, start: float, end: float, step: float, agg: str) -> list[tuple[Tier, float, float, float]]:
        """Split [start, end] into (tier, start, end, step) segments, newest first.

        The newest part comes from the coarsest tier whose step fits the query (raw for
        quantiles, which rollups cannot answer exactly); older parts that tier no longer
        holds come from the coarser tiers that do, at their own step. Each edge between two
        tiers falls on a bucket edge of both, and the older tier answers only what lies
        strictly before it: no sample is counted twice, none is left out.
        """
        now = self.store.clock()
        tiers = self.store.tiers
        fitting = [i for i, t in enumerate(tiers) if t.step <= step]
        chosen = tiers[0 if agg in _QUANTILES else fitting[-1] :]
        segments = []
        upper = end
        for i, tier in enumerate(chosen):
            seg_step = max(step, tier.step)
            lower = max(start, now - tier.retention)
            if lower > start and i + 1 < len(chosen):
                lower = _edge(lower, seg_step, max(step, chosen[i + 1].step), tier.retention)
            if segments:  # the newer tier holds [upper, ...]: stop just before it
                upper = float(np.nextafter(upper, -np.inf))
            if lower < upper or (not segments and lower <= upper):
                segments.append((tier, lower, upper, seg_step))
                upper = lower
            if upper <= start:
                break
        return segments

    def query(
        self,
        selector: str | Selector,
        start: float,
        end: float,
        step: float,
        agg: str = "avg",
        legend: str | None = None,
        deadline: float | None = None,
        peaks: bool = False,
    ) -> pd.DataFrame:
        """Return one column per matching series, one row per step bucket (UTC index).

        ``deadline`` (a ``time.monotonic()`` value) stops a query that runs too long, between series.
        ``peaks`` (with avg) gives each bucket two rows instead, its lowest and its highest sample
        (at the bucket's start and middle, in the order they happened where the store knows it):
        a zoomed-out line still reaches every spike and dip.
        """
        if isinstance(selector, str):
            selector = parse_selector(selector)
        check_query(agg, start, end, step)
        series = [s for s in self.store.series(selector.name) if selector.matches(s.label_dict)]
        if not series:
            return empty_frame()
        segments = self.plan(start, end, step, agg)
        columns: list[tuple[SeriesInfo, np.ndarray, np.ndarray]] = []
        for s in series:
            if deadline is not None and time.monotonic() > deadline:
                raise QueryTimeout(
                    f"the query ran out of time after {len(columns)} of {len(series)} series: "
                    "narrow the selector or the range, or raise the step"
                )
            if peaks and agg == "avg":
                pieces = [
                    self._raw_peaks(s, lo, hi, seg_step)
                    if tier.raw
                    else self._rollup_peaks(tier, s, lo, hi, seg_step)
                    for tier, lo, hi, seg_step in segments
                ]
            else:
                pieces = [
                    self._raw(s, lo, hi, seg_step, agg)
                    if tier.raw
                    else self._rollup(tier, s, lo, hi, seg_step, agg)
                    for tier, lo, hi, seg_step in segments
                ]
            t, v = _join_segments(pieces)
            if len(t):
                t, v = cap_points(t, v, start, end, self.max_points)
                columns.append((SeriesInfo(s.name, s.label_dict), t, v))
        return series_frame(columns, legend, segments[0][3])

    def window(
        self,
        selector: str | Selector,
        start: float,
        end: float,
        agg: str = "avg",
        predict: float | None = None,
    ) -> list[tuple[Series, float]]:
        """Return one value per matching series over [start, end]: the aggregation of the whole window.

        With ``predict`` (seconds), the value is a least-squares line through the window's points,
        read that far past ``end`` (Prometheus' ``predict_linear``). The raw tier answers when it
        still holds the start of the window, the finest rollup otherwise.
        """
        if isinstance(selector, str):
            selector = parse_selector(selector)
        if agg not in AGGREGATIONS:
            raise QueryError(f"aggregation {agg!r} is not one of {', '.join(AGGREGATIONS)}")
        if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
            raise QueryError("a window needs an end after its start")
        raw_from = self.store.clock() - self.store.tiers[0].retention
        rollup = self.store.tiers[1] if start < raw_from and len(self.store.tiers) > 1 else None
        out = []
        for s in self.store.series(selector.name):
            if not selector.matches(s.label_dict):
                continue
            value = (
                self._window_raw(s, start, end, agg, predict)
                if rollup is None
                else self._window_rollup(rollup, s, start, end, agg, predict)
            )
            if value is not None and math.isfinite(value):
                out.append((s, value))
        return out

    def _window_raw(
        self, s: Series, start: float, end: float, agg: str, predict: float | None
    ) -> float | None:
        ts, val = self.store.read_raw(s.id, start, end)
        if len(ts) == 0:
            return None
        if predict is not None:
            return _predict(ts, val, end + predict)
        if agg == "rate":
            if len(ts) < 2 or ts[-1] <= ts[0]:
                return None
            return float(_increase(val).sum() / (ts[-1] - ts[0]))
        if agg in _QUANTILES:
            return float(np.quantile(val, _QUANTILES[agg]))
        return float(
            {
                "avg": np.mean,
                "min": np.min,
                "max": np.max,
                "sum": np.sum,
                "count": len,
                "last": lambda v: v[-1],
            }[agg](val)
        )

    def _window_rollup(
        self, tier: Tier, s: Series, start: float, end: float, agg: str, predict: float | None
    ) -> float | None:
        r = self.store.read_rollup(tier, s.id, start, end)
        if len(r) == 0:
            return None
        if predict is not None:
            return _predict(r.start + tier.step / 2, r.sum / r.count, end + predict)
        if agg == "rate":
            span = min(end, self.store.clock()) - max(start, float(r.start[0]))
            return float(r.increase.sum() / span) if span > 0 else None
        if agg in _QUANTILES:  # rollups keep no samples: the quantile of the step means
            return float(np.quantile(r.sum / r.count, _QUANTILES[agg]))
        reduce = {
            "avg": lambda: r.sum.sum() / r.count.sum(),
            "min": lambda: r.min.min(),
            "max": lambda: r.max.max(),
            "sum": lambda: r.sum.sum(),
            "count": lambda: r.count.sum(),
            "last": lambda: r.last[-1],
        }
        return float(reduce[agg]())

    def _raw(
        self, s: Series, start: float, end: float, step: float, agg: str
    ) -> tuple[np.ndarray, np.ndarray]:
        ts, val = self.store.read_raw(s.id, start, end)
        if len(ts) == 0:
            return ts, val
        if agg == "rate":
            if len(ts) < 2:
                return ts[:0], val[:0]
            return _rate(ts[1:], _increase(val), np.diff(ts), step)
        keys, starts, ends = _buckets(ts, step)
        if agg in _QUANTILES:
            out = pd.Series(val).groupby(np.repeat(keys, ends - starts), sort=True).quantile(_QUANTILES[agg])
            return keys, out.to_numpy(dtype=float)
        if agg == "avg":
            return keys, np.add.reduceat(val, starts) / (ends - starts)
        if agg == "count":
            return keys, (ends - starts).astype(float)
        if agg == "last":
            return keys, val[ends - 1]
        return keys, _REDUCE[agg].reduceat(val, starts)

    def _raw_peaks(self, s: Series, start: float, end: float, step: float) -> tuple[np.ndarray, np.ndarray]:
        ts, val = self.store.read_raw(s.id, start, end)
        if len(ts) == 0:
            return ts, val
        keys, starts, ends = _buckets(ts, step)
        group = np.repeat(np.arange(len(keys)), ends - starts)
        order = np.lexsort((val, group))  # within each bucket, lowest first
        low, high = order[starts], order[ends - 1]
        low_first = low <= high
        first = np.where(low_first, val[low], val[high])
        second = np.where(low_first, val[high], val[low])
        return _pairs(keys, step, first, second)

    def _rollup_peaks(self, tier: Tier, s: Series, start: float, end: float, step: float):
        r = self.store.read_rollup(tier, s.id, start, end)
        if len(r) == 0:
            return r.start.astype(float), r.sum
        keys, starts, _ = _buckets(r.start.astype(float), step)
        return _pairs(keys, step, np.minimum.reduceat(r.min, starts), np.maximum.reduceat(r.max, starts))

    def _rollup(self, tier: Tier, s: Series, start: float, end: float, step: float, agg: str):
        r = self.store.read_rollup(tier, s.id, start, end)
        if len(r) == 0:
            return r.start.astype(float), r.sum
        if agg == "rate":
            now = self.store.clock()
            covered = np.minimum(tier.step, np.maximum(now - r.start, 1e-9))  # the newest bucket is partial
            return _rate(r.start, r.increase, covered, step)
        keys, starts, ends = _buckets(r.start.astype(float), step)
        if agg == "avg":
            return keys, np.add.reduceat(r.sum, starts) / np.add.reduceat(r.count, starts)
        if agg in ("count", "sum"):
            return keys, np.add.reduceat(getattr(r, agg), starts).astype(float)
        if agg == "last":
            return keys, r.last[ends - 1]
        if agg in _QUANTILES:  # rollups keep no samples: the quantile of the step means
            means = pd.Series(r.sum / r.count)
            out = means.groupby(np.repeat(keys, ends - starts), sort=True).quantile(_QUANTILES[agg])
            return keys, out.to_numpy(dtype=float)
        return keys, _REDUCE[agg].reduceat(getattr(r, agg), starts)


_REDUCE = {"min": np.minimum, "max": np.maximum, "sum": np.add}


def _edge(t: float, finer: float, coarser: float, retention: float) -> float:
    """Return the first time at or after t that starts a bucket of both steps (else of the coarser)."""
    a, b = Fraction(finer).limit_denominator(1000), Fraction(coarser).limit_denominator(1000)
    both = Fraction(
        math.lcm(a.numerator * b.denominator, b.numerator * a.denominator), a.denominator * b.denominator
    )
    width = float(both) if both <= retention / 2 else coarser
    return math.ceil(t / width) * width


def _buckets(ts: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group sorted timestamps into step buckets: return bucket starts and each group's [start, end)."""
    keys = np.floor(ts / step) * step
    starts = np.flatnonzero(np.append(True, keys[1:] != keys[:-1]))
    ends = np.append(starts[1:], len(ts))
    return keys[starts], starts, ends


def _pairs(keys: np.ndarray, step: float, first: np.ndarray, second: np.ndarray):
    """Two points per bucket, at its start and its middle."""
    t = np.column_stack([keys, keys + step / 2]).ravel()
    v = np.column_stack([first, second]).ravel()
    return t, v


def _join_segments(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Join segments given newest first into one series, oldest first, keeping the finer at an edge."""
    pieces = [p for p in pieces if len(p[0])]
    if not pieces:
        return np.zeros(0), np.zeros(0)
    t, v = pieces[0]
    for older_t, older_v in pieces[1:]:
        keep = older_t < t[0]
        t, v = np.concatenate([older_t[keep], t]), np.concatenate([older_v[keep], v])
    return t, v


def _wide(labels: list[str], columns: list[tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Return a frame indexed by UTC time with one column per series; gaps are NaN."""
    first = columns[0][0]
    if all(len(t) == len(first) and np.array_equal(t, first) for t, _ in columns):
        times, data = first, np.column_stack([v for _, v in columns])
    else:
        times = np.unique(np.concatenate([t for t, _ in columns]))
        data = np.full((len(times), len(columns)), np.nan)
        for i, (t, v) in enumerate(columns):
            data[np.searchsorted(times, t), i] = v
    # Millisecond resolution, built straight from integers: pd.to_datetime costs ten times as much.
    index = utc_index(np.round(np.asarray(times) * 1000).astype("int64"))
    return pd.DataFrame(data, index=index, columns=pd.Index(labels, dtype=object))


def _increase(values: np.ndarray) -> np.ndarray:
    """Return the increase between successive counter values; a drop is a reset, counted from zero."""
    delta = np.diff(values)
    return np.where(delta < 0, values[1:], delta)


def _rate(ts: np.ndarray, increase: np.ndarray, dt: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    keys, starts, _ = _buckets(ts, step)
    inc, spent = np.add.reduceat(increase, starts), np.add.reduceat(dt, starts)
    ok = spent > 0
    return keys[ok], inc[ok] / spent[ok]


def _predict(ts: np.ndarray, values: np.ndarray, at: float) -> float | None:
    """Fit a least-squares line and read it at a time; None with fewer than two distinct times."""
    if len(ts) < 2 or ts[-1] == ts[0]:
        return None
    slope, intercept = np.polyfit(ts - ts[0], values, 1)
    return float(intercept + slope * (at - ts[0]))


def _told_apart(labels: list[str], infos: list[SeriesInfo]) -> list[str]:
    """Add the label values that differ to names that several series share (two hosts' "all cores")."""
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    out = list(labels)
    for label, members in groups.items():
        if len(members) < 2:
            continue
        keys = sorted({k for i in members for k in infos[i].labels})
        differ = [k for k in keys if len({infos[i].labels.get(k, "") for i in members}) > 1]
        for i in members:
            values = [infos[i].labels.get(k, "") for k in differ]
            if any(values):
                out[i] = f"{label} ({', '.join(v for v in values if v)})"
    return out


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label if n == 0 else f"{label} ({n + 1})")
    return out
