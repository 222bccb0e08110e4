"""The embedded time-series store: a raw tier and rollup tiers in preallocated numpy buffers."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from collectors.metrics import Labels, MetricSpec, Sample

EMPTY_BUCKET = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Tier:
    """A resolution the store keeps: step 0 is the raw tier, otherwise a rollup of that step."""

    step: float
    retention: float

    @property
    def raw(self) -> bool:
        return self.step == 0


@dataclass
class Rollup:
    """Per-step summaries of one series on one tier, oldest first."""

    start: np.ndarray  # bucket start, Unix seconds
    count: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray
    last: np.ndarray
    increase: np.ndarray  # counter increase within the bucket, resets counted from zero

    def __len__(self) -> int:
        return len(self.start)


@dataclass(frozen=True)
class Series:
    """One series: a metric name and a fixed label set, with its row in the buffers."""

    id: int
    name: str
    labels: Labels

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


class _RollupBuffer:
    """Ring buffers indexed by bucket number: slot = bucket % slots."""

    FIELDS = ("count", "sum", "min", "max", "last", "increase")

    def __init__(self, tier: Tier, rows: int):
        self.tier = tier
        self.slots = max(1, math.ceil(tier.retention / tier.step))
        self.bucket = np.full((rows, self.slots), EMPTY_BUCKET, dtype=np.int64)
        self.count = np.zeros((rows, self.slots), dtype=np.int64)
        self.sum = np.zeros((rows, self.slots))
        self.min = np.zeros((rows, self.slots))
        self.max = np.zeros((rows, self.slots))
        self.last = np.zeros((rows, self.slots))
        self.increase = np.zeros((rows, self.slots))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"bucket": self.bucket, **{f: getattr(self, f) for f in self.FIELDS}}

    def grow(self, rows: int) -> None:
        for name, arr in self.arrays().items():
            extra = np.full(
                (rows - arr.shape[0], self.slots), EMPTY_BUCKET if name == "bucket" else 0, arr.dtype
            )
            setattr(self, name, np.concatenate([arr, extra]))

    def add(self, sid: np.ndarray, ts: np.ndarray, val: np.ndarray, inc: np.ndarray) -> None:
        """Fold samples (sorted by series, then time) into their buckets."""
        b = np.floor(ts / self.tier.step).astype(np.int64)
        n = len(sid)
        boundary = np.empty(n, dtype=bool)
        boundary[0] = True
        boundary[1:] = (sid[1:] != sid[:-1]) | (b[1:] != b[:-1])
        starts = np.flatnonzero(boundary)
        ends = np.append(starts[1:], n)
        g_sid, g_b = sid[starts], b[starts]
        # A batch spanning more than the retention would put two buckets in one slot: keep the newer.
        s_starts = np.flatnonzero(np.append(True, sid[1:] != sid[:-1]))
        s_ends = np.append(s_starts[1:], n)
        newest = np.repeat(b[s_ends - 1], s_ends - s_starts)[starts]
        keep = g_b > newest - self.slots
        if not keep.all():
            starts, ends, g_sid, g_b = starts[keep], ends[keep], g_sid[keep], g_b[keep]
        g_count = ends - starts
        g_sum = np.add.reduceat(val, starts)
        g_min = np.minimum.reduceat(val, starts)
        g_max = np.maximum.reduceat(val, starts)
        g_last = val[ends - 1]
        g_inc = np.add.reduceat(inc, starts)
        slot = g_b % self.slots
        same = self.bucket[g_sid, slot] == g_b
        self.count[g_sid, slot] = np.where(same, self.count[g_sid, slot] + g_count, g_count)
        self.sum[g_sid, slot] = np.where(same, self.sum[g_sid, slot] + g_sum, g_sum)
        self.min[g_sid, slot] = np.where(same, np.minimum(self.min[g_sid, slot], g_min), g_min)
        self.max[g_sid, slot] = np.where(same, np.maximum(self.max[g_sid, slot], g_max), g_max)
        self.last[g_sid, slot] = g_last
        self.increase[g_sid, slot] = np.where(same, self.increase[g_sid, slot] + g_inc, g_inc)
        self.bucket[g_sid, slot] = g_b

    def load(self, saved: dict[str, np.ndarray]) -> None:
        """Put saved buckets of the same step back, whatever the saved number of slots."""
        rows, cols = np.nonzero(saved["bucket"] != EMPTY_BUCKET)
        buckets = saved["bucket"][rows, cols]
        newest = np.full(saved["bucket"].shape[0], EMPTY_BUCKET)
        np.maximum.at(newest, rows, buckets)
        keep = buckets > newest[rows] - self.slots  # what the new retention still holds
        rows, cols, buckets = rows[keep], cols[keep], buckets[keep]
        slots = buckets % self.slots
        self.bucket[rows, slots] = buckets
        for field in self.FIELDS:
            if field in saved:  # a field older snapshots lack stays zero
                getattr(self, field)[rows, slots] = saved[field][rows, cols]

    def read(self, sid: int, start: float, end: float, now: float) -> Rollup:
        step = self.tier.step
        first = max(math.floor(start / step), math.floor(now / step) - self.slots + 1)
        last = math.floor(end / step)
        row = self.bucket[sid]
        idx = np.flatnonzero((row >= first) & (row <= last))
        idx = idx[np.argsort(row[idx], kind="stable")]
        return Rollup(
            start=row[idx] * step,
            count=self.count[sid, idx].copy(),
            sum=self.sum[sid, idx].copy(),
            min=self.min[sid, idx].copy(),
            max=self.max[sid, idx].copy(),
            last=self.last[sid, idx].copy(),
            increase=self.increase[sid, idx].copy(),
        )


class Store:
    """Keep every series in a raw ring buffer and in rollup tiers, bounded by retention.

    Appends and reads take one lock, so any number of threads may write and read.
    Samples older than a series' newest sample are refused (counted in ``out_of_order``),
    as Prometheus does: tiers stay sorted and rollups stay exact.
    """

    def __init__(
        self,
        raw: Tier,
        raw_resolution: float,
        rollups: Iterable[Tier] = (),
        clock: Callable[[], float] = time.time,
        initial_rows: int = 64,
        journal: bool = True,
    ):
        if not raw.raw:
            raise ValueError("the raw tier has step 0")
        self.tiers = (raw, *sorted(rollups, key=lambda t: t.step))
        self.clock = clock
        self.capacity = max(1, math.ceil(raw.retention / raw_resolution))
        self._lock = threading.Lock()
        self._rows = initial_rows
        self._raw_ts = np.full((initial_rows, self.capacity), np.nan)
        self._raw_val = np.full((initial_rows, self.capacity), np.nan)
        self._written = np.zeros(initial_rows, dtype=np.int64)
        self._newest = np.full(initial_rows, -np.inf)
        self._last_value = np.full(initial_rows, np.nan)
        self._rollups = [_RollupBuffer(t, initial_rows) for t in self.tiers[1:]]
        self._ids: dict[tuple[str, Labels], int] = {}
        self._series: list[Series] = []
        self._by_name: dict[str, list[Series]] = {}
        self.specs: dict[str, MetricSpec] = {}
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.journal = journal  # keep appended samples for take_pending (an archive drains them)
        self.appended = 0
        self.out_of_order = 0
        self.not_finite = 0

    # ----- metadata
    def declare(self, spec: MetricSpec) -> None:
        """Record a metric's declaration; a name keeps the type it was first declared with."""
        with self._lock:
            known = self.specs.get(spec.name)
            if known is not None and known.type != spec.type:
                raise ValueError(f"metric {spec.name} is a {known.type}, not a {spec.type}")
            self.specs[spec.name] = spec

    def series(self, name: str) -> list[Series]:
        """Return the series of one metric name."""
        with self._lock:
            return list(self._by_name.get(name, ()))

    def names(self) -> list[str]:
        """Return every metric name that has at least one series."""
        with self._lock:
            return sorted(self._by_name)

    @property
    def series_count(self) -> int:
        return len(self._series)

    def _series_id(self, name: str, labels: Labels) -> int:
        sid = self._ids.get((name, labels))
        if sid is None:
            sid = len(self._series)
            if sid >= self._rows:
                self._grow(self._rows * 2)
            series = Series(sid, name, labels)
            self._ids[(name, labels)] = sid
            self._series.append(series)
            self._by_name.setdefault(name, []).append(series)
        return sid

    def _grow(self, rows: int) -> None:
        extra = rows - self._rows
        self._raw_ts = np.concatenate([self._raw_ts, np.full((extra, self.capacity), np.nan)])
        self._raw_val = np.concatenate([self._raw_val, np.full((extra, self.capacity), np.nan)])
        self._written = np.concatenate([self._written, np.zeros(extra, dtype=np.int64)])
        self._newest = np.concatenate([self._newest, np.full(extra, -np.inf)])
        self._last_value = np.concatenate([self._last_value, np.full(extra, np.nan)])
        for r in self._rollups:
            r.grow(rows)
        self._rows = rows

    # ----- writing
    def append(self, samples: Iterable[Sample]) -> int:
        """Store samples through the one write path; return how many were kept."""
        samples = list(samples)
        if not samples:
            return 0
        with self._lock:
            sid = np.fromiter(
                (self._series_id(s.name, s.labels) for s in samples), dtype=np.int64, count=len(samples)
            )
            ts = np.fromiter((s.timestamp for s in samples), dtype=np.float64, count=len(samples))
            val = np.fromiter((s.value for s in samples), dtype=np.float64, count=len(samples))
            return self._append_arrays(sid, ts, val, log=self.journal)

    def _append_arrays(self, sid: np.ndarray, ts: np.ndarray, val: np.ndarray, log: bool) -> int:
        finite = np.isfinite(val) & np.isfinite(ts)
        if not finite.all():
            self.not_finite += int((~finite).sum())
            sid, ts, val = sid[finite], ts[finite], val[finite]
        order = np.lexsort((ts, sid))
        sid, ts, val = sid[order], ts[order], val[order]
        in_order = ts >= self._newest[sid]
        if not in_order.all():
            # Within one batch a series must also be in time order; lexsort guarantees that.
            self.out_of_order += int((~in_order).sum())
            sid, ts, val = sid[in_order], ts[in_order], val[in_order]
        n = len(sid)
        if n == 0:
            return 0
        first = np.append(True, sid[1:] != sid[:-1])
        previous = np.where(first, self._last_value[sid], np.roll(val, 1))
        inc = np.where(val < previous, val, val - previous)  # a drop is a counter reset
        inc[np.isnan(previous)] = 0.0
        self._write_raw(sid, ts, val)
        for r in self._rollups:
            r.add(sid, ts, val, inc)
        if log:
            self._pending.append((sid, ts, val))
        self.appended += n
        return n

    def _write_raw(self, sid: np.ndarray, ts: np.ndarray, val: np.ndarray) -> None:
        """Write samples sorted by series then time into the raw rings."""
        n = len(sid)
        starts = np.flatnonzero(np.append(True, sid[1:] != sid[:-1]))
        counts = np.diff(np.append(starts, n))
        g_sid = sid[starts]
        rank = np.arange(n) - np.repeat(starts, counts)
        keep = rank >= np.repeat(counts, counts) - self.capacity
        pos = (np.repeat(self._written[g_sid], counts) + rank) % self.capacity
        self._raw_ts[sid[keep], pos[keep]] = ts[keep]
        self._raw_val[sid[keep], pos[keep]] = val[keep]
        self._written[g_sid] += counts
        self._newest[g_sid] = ts[starts + counts - 1]
        self._last_value[g_sid] = val[starts + counts - 1]

    # ----- reading
    def read_raw(self, series_id: int, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """Return (timestamps, values) of the raw tier within [start, end] and its retention."""
        now = self.clock()
        lo = max(start, now - self.tiers[0].retention)
        with self._lock:
            written = int(self._written[series_id])
            if written <= self.capacity:
                ts = self._raw_ts[series_id, :written].copy()
                val = self._raw_val[series_id, :written].copy()
            else:
                head = written % self.capacity
                ts = np.roll(self._raw_ts[series_id], -head)
                val = np.roll(self._raw_val[series_id], -head)
        mask = (ts >= lo) & (ts <= end)
        return ts[mask], val[mask]

    def read_rollup(self, tier: Tier, series_id: int, start: float, end: float) -> Rollup:
        """Return the rollup buckets of one tier that start within [start, end] and its retention."""
        now = self.clock()
        buf = next(r for r in self._rollups if r.tier == tier)
        with self._lock:
            return buf.read(series_id, start, end, now)

    def lookup(self, name: str, labels: Labels) -> Series | None:
        """Return the series of a name and label set, if it exists."""
        with self._lock:
            sid = self._ids.get((name, labels))
            return None if sid is None else self._series[sid]

    def last_value(self, series_id: int) -> float:
        """Return the newest value of a series (NaN when it has none)."""
        return float(self._last_value[series_id])

    def latest(self, names: Iterable[str] | None = None) -> list[tuple[Series, float, float]]:
        """Return (series, timestamp, value) of the newest sample of every series, or of some names."""
        with self._lock:
            if names is None:
                series = list(self._series)
            else:
                series = [s for n in names for s in self._by_name.get(n, ())]
            rows = np.fromiter((s.id for s in series), dtype=np.int64, count=len(series))
            ts, val = self._newest[rows].copy(), self._last_value[rows].copy()
        return [(s, float(t), float(v)) for s, t, v in zip(series, ts, val) if np.isfinite(t)]

    def newest(self, series_id: int) -> float:
        """Return the timestamp of a series' newest sample (-inf when it has none)."""
        return float(self._newest[series_id])

    def memory_bytes(self) -> int:
        """Return the bytes held by the sample buffers."""
        return sum(self.memory_by_tier().values())

    def memory_by_tier(self) -> dict[Tier, int]:
        """Return the bytes each tier's buffers hold (the raw tier with the per-series bookkeeping)."""
        raw = self._raw_ts.nbytes + self._raw_val.nbytes + self._written.nbytes + self._newest.nbytes
        rollups = {r.tier: sum(a.nbytes for a in r.arrays().values()) for r in self._rollups}
        return {self.tiers[0]: raw, **rollups}

    # ----- persistence hooks
    def take_pending(self) -> tuple[list[tuple[str, Labels]], np.ndarray, np.ndarray, np.ndarray]:
        """Hand over the samples appended since the last call, as a chunk that ``replay`` takes."""
        with self._lock:
            chunks, self._pending = self._pending, []
            if not chunks:
                return [], np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
            sid, ts, val = (np.concatenate(parts) for parts in zip(*chunks))
            used, index = np.unique(sid, return_inverse=True)
            series = [(self._series[i].name, self._series[i].labels) for i in used.tolist()]
        return series, index.astype(np.int64), ts, val

    def export_state(self) -> dict:
        """Return a copy of every buffer and the series table, trimmed to the series in use."""
        with self._lock:
            n = len(self._series)
            self._pending = []
            return {
                "series": [(s.name, s.labels) for s in self._series],
                "specs": list(self.specs.values()),
                "capacity": self.capacity,
                "raw_ts": self._raw_ts[:n].copy(),
                "raw_val": self._raw_val[:n].copy(),
                "written": self._written[:n].copy(),
                "newest": self._newest[:n].copy(),
                "last_value": self._last_value[:n].copy(),
                "rollups": [
                    {"tier": r.tier, **{k: a[:n].copy() for k, a in r.arrays().items()}}
                    for r in self._rollups
                ],
            }

    def import_state(self, state: dict) -> None:
        """Load buffers saved by export_state, fitting them to this store's retention."""
        with self._lock:
            for name, labels in state["series"]:
                self._series_id(name, tuple(tuple(p) for p in labels))
            for spec in state["specs"]:
                self.specs[spec.name] = spec
            n = len(state["series"])
            self._newest[:n] = state["newest"]
            if "last_value" in state:  # older snapshots lack it: the next sample then starts counting afresh
                self._last_value[:n] = state["last_value"]
            if state["capacity"] == self.capacity:
                self._raw_ts[:n] = state["raw_ts"]
                self._raw_val[:n] = state["raw_val"]
                self._written[:n] = state["written"]
            else:  # the raw buffer changed size: write the saved samples again, oldest first
                order = np.argsort(state["raw_ts"], axis=1, kind="stable")
                ts = np.take_along_axis(state["raw_ts"], order, axis=1)
                val = np.take_along_axis(state["raw_val"], order, axis=1)
                rows = np.repeat(np.arange(n), ts.shape[1])
                ts, val = ts.ravel(), val.ravel()
                present = ~np.isnan(ts)
                if present.any():
                    self._write_raw(rows[present], ts[present], val[present])
            for saved in state["rollups"]:
                buf = next((r for r in self._rollups if r.tier.step == saved["tier"].step), None)
                if buf is not None:  # a step no longer configured is dropped
                    buf.load(saved)

    def replay(
        self, series: list[tuple[str, Labels]], sid: np.ndarray, ts: np.ndarray, val: np.ndarray
    ) -> int:
        """Append a saved chunk whose series ids index into ``series``."""
        with self._lock:
            mapping = np.array(
                [self._series_id(name, tuple(tuple(p) for p in labels)) for name, labels in series] or [0]
            )
            return self._append_arrays(mapping[sid], ts, val, log=False)


def build_store(settings: Any, clock: Callable[[], float] = time.time, journal: bool = True) -> Store:
    """Return an empty store shaped by the environment's retention settings (``settings.store``).

    ``journal`` keeps appended samples until an archive takes them; a store without an archive
    (an agent, a replica reading from Prometheus) must not, or they pile up in memory.
    """
    cfg = settings.store
    return Store(
        Tier(0, cfg.raw.retention),
        cfg.raw.resolution,
        [Tier(t.step, t.retention) for t in cfg.rollups],
        clock=clock,
        journal=journal,
    )
