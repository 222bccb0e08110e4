"""Turn store tiers into pandas frames: range, step, aggregation, rate and a point cap."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from collectors.selector import Selector, parse_selector
from collectors.store import Series, Store, Tier

AGGREGATIONS = ("avg", "min", "max", "sum", "last", "count", "p50", "p95", "p99", "rate")
_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_PANDAS = {"avg": "mean", "min": "min", "max": "max", "sum": "sum", "last": "last", "count": "count"}


class QueryError(ValueError):
    """A query that cannot be answered as asked; the message says what is allowed."""


@dataclass(frozen=True)
class SeriesInfo:
    """Which series a frame column holds."""

    name: str
    labels: dict[str, str]


def empty_frame() -> pd.DataFrame:
    """Return a frame with no rows and no series, indexed by UTC time."""
    return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="time"))


def column_label(series: Series, legend: str | None, many_names: bool) -> str:
    """Name a column from a legend template such as ``{core}``, or from the labels."""
    labels = series.label_dict
    if legend:
        try:
            return legend.format_map(_Blank(labels))
        except (ValueError, IndexError):
            return legend
    if not labels:
        return series.name
    text = ", ".join(f"{k}={v}" for k, v in series.labels) if len(labels) > 1 else next(iter(labels.values()))
    return f"{series.name} {text}" if many_names else text


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
        holds come from the coarser tiers that do, at their own step.
        """
        now = self.store.clock()
        tiers = self.store.tiers
        fitting = [i for i, t in enumerate(tiers) if t.step <= step]
        first = 0 if agg in _QUANTILES else fitting[-1]
        segments = []
        upper = end
        for tier in tiers[first:]:
            lower = max(start, now - tier.retention)
            if lower < upper or (not segments and lower <= upper):
                segments.append((tier, lower, upper, max(step, tier.step)))
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
    ) -> pd.DataFrame:
        """Return one column per matching series, one row per step bucket (UTC index)."""
        if isinstance(selector, str):
            selector = parse_selector(selector)
        if agg not in AGGREGATIONS:
            raise QueryError(f"aggregation {agg!r} is not one of {', '.join(AGGREGATIONS)}")
        if not (math.isfinite(step) and step > 0):
            raise QueryError("step must be a positive number of seconds")
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise QueryError("end must not be before start")
        series = [s for s in self.store.series(selector.name) if selector.matches(s.label_dict)]
        if not series:
            return empty_frame()
        segments = self.plan(start, end, step, agg)
        parts = []
        for i, s in enumerate(series):
            for tier, lo, hi, seg_step in segments:
                if tier.raw:
                    part = self._raw(s, lo, hi, seg_step, agg)
                else:
                    part = self._rollup(tier, s, lo, hi, seg_step, agg)
                if len(part[0]):
                    parts.append((np.full(len(part[0]), i), *part))
        if not parts:
            return empty_frame()
        sid, t, v = (np.concatenate(p) for p in zip(*parts))
        long = pd.DataFrame({"s": sid, "t": t, "v": v})
        if len(segments) > 1:  # a bucket at a segment edge can appear twice: keep the finer tier's
            long = long.drop_duplicates(["s", "t"], keep="first").sort_values(["s", "t"], ignore_index=True)
        long = self._cap(long, start, end)
        wide = long.pivot(index="t", columns="s", values="v")
        many_names = len({s.name for s in series}) > 1
        columns = wide.columns.tolist()
        labels = _unique([column_label(series[i], legend, many_names) for i in columns])
        wide.columns = labels
        wide.index = pd.to_datetime(wide.index, unit="s", utc=True).rename("time")
        wide.attrs["series"] = {
            lab: SeriesInfo(series[i].name, series[i].label_dict) for lab, i in zip(labels, columns)
        }
        wide.attrs["step"] = segments[0][3]
        return wide

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
        keys = np.floor(ts / step) * step
        grouped = pd.Series(val).groupby(keys, sort=True)
        out = grouped.quantile(_QUANTILES[agg]) if agg in _QUANTILES else grouped.agg(_PANDAS[agg])
        return out.index.to_numpy(dtype=float), out.to_numpy(dtype=float)

    def _rollup(self, tier: Tier, s: Series, start: float, end: float, step: float, agg: str):
        r = self.store.read_rollup(tier, s.id, start, end)
        if len(r) == 0:
            return r.start, r.sum
        if agg == "rate":
            now = self.store.clock()
            covered = np.minimum(tier.step, np.maximum(now - r.start, 1e-9))  # the newest bucket is partial
            return _rate(r.start, r.increase, covered, step)
        frame = pd.DataFrame(
            {
                "count": r.count,
                "sum": r.sum,
                "min": r.min,
                "max": r.max,
                "last": r.last,
                "mean": r.sum / r.count,
            },
            index=np.floor(r.start / step) * step,
        )
        grouped = frame.groupby(level=0, sort=True)
        if agg == "avg":
            sums = grouped[["sum", "count"]].sum()
            out = sums["sum"] / sums["count"]
        elif agg in _QUANTILES:
            out = grouped["mean"].quantile(_QUANTILES[agg])  # rollups keep no samples: quantile of step means
        else:
            column = {"count": "count", "sum": "sum", "min": "min", "max": "max", "last": "last"}[agg]
            out = grouped[column].agg("sum" if agg in ("count", "sum") else _PANDAS[agg])
        return out.index.to_numpy(dtype=float), out.to_numpy(dtype=float)

    def _cap(self, long: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
        """Keep at most max_points per series: beyond that, the min and the max of each bucket."""
        if long.groupby("s").size().max() <= self.max_points:
            return long
        width = max((end - start) / (self.max_points // 2), 1e-9)
        long = long.assign(c=np.floor((long["t"] - start) / width))
        grouped = long.groupby(["s", "c"])["v"]
        keep = np.union1d(grouped.idxmin().to_numpy(), grouped.idxmax().to_numpy())
        return long.loc[keep, ["s", "t", "v"]]


def _increase(values: np.ndarray) -> np.ndarray:
    """Return the increase between successive counter values; a drop is a reset, counted from zero."""
    delta = np.diff(values)
    return np.where(delta < 0, values[1:], delta)


def _rate(ts: np.ndarray, increase: np.ndarray, dt: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    keys = np.floor(ts / step) * step
    sums = pd.DataFrame({"inc": increase, "dt": dt}).groupby(keys, sort=True).sum()
    sums = sums[sums["dt"] > 0]
    return sums.index.to_numpy(dtype=float), (sums["inc"] / sums["dt"]).to_numpy(dtype=float)


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label if n == 0 else f"{label} ({n + 1})")
    return out
