"""The embedded time-series store: recent samples in a head in memory, history in compressed chunks.

Its shape is Prometheus' TSDB: each series appends into a head chunk of at most ``HEAD_CHUNK``
samples; a full (or old) head chunk is sealed, and the next flush compresses it into the
archive together with its rollup buckets for every coarser tier. Memory therefore grows with
the series held, not with the retention, and every accepted sample is kept at full
resolution for the raw retention, however fast it arrives. A flush also writes the samples
appended since the last one to a write-ahead log, so a restart puts the head back.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsdb.archive import Archive, raw_row, rollup_row
from tsdb.chunks import (
    Rollup,
    merge_rollups,
    roll_up,
    roll_up_many,
    to_ms,
)
from tsdb.metrics import STALE_AFTER, Labels, MetricRegistry, MetricSpec, Sample, is_stale

HEAD_CHUNK = 120  # samples a head chunk holds before it is sealed (Prometheus cuts chunks at 120 too)
HEAD_SPAN = 3600.0  # seconds: an older head chunk is sealed whatever its size, so the log stays short
BACKFILL_CHUNK = 1200  # samples per chunk when history older than the head arrives
COMPACT_AFTER = 16  # chunks of one series and tier written before they are merged
RAW_MERGE = 960  # samples a merged raw chunk holds at most (eight head chunks)
PARTITION = 1440  # buckets one merged rollup chunk covers at most (a day of minutes)
UPKEEP_EVERY = 60.0  # seconds between two passes that drop expired chunks and series
CHANGES_KEPT = 4096  # the store's last changes remembered, for answers held since one of them
INLINE_FLUSH = 200_000  # sealed samples waiting past which an append writes them itself
CHECKPOINT_EVERY = 300.0  # seconds between two flushes that write every head whole and drop the older log
_EMPTY = np.iinfo(np.int64).max
log = logging.getLogger(__name__)


class SeriesLimitError(ValueError):
    """Samples that would make more series than the store may hold (``store.max_series``)."""

    status = 422


class NotStored(RuntimeError):
    """Samples refused because the data directory could not be written: none of them is kept."""

    status = 507


@dataclass(frozen=True)
class Tier:
    """A resolution the store keeps: step 0 is the raw tier, otherwise a rollup of that step."""

    step: float
    retention: float

    @property
    def raw(self) -> bool:
        return self.step == 0


@dataclass(frozen=True, slots=True)
class Series:
    """One series: a metric name and a fixed label set, with its row in the head."""

    id: int
    name: str
    labels: Labels

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(slots=True)
class _Sealed:
    """A chunk taken out of the head (or history that arrived late), waiting for the next flush."""

    ts: np.ndarray
    val: np.ndarray
    prev: float  # the value before the first sample, for counter increases (NaN: unknown)
    backfill: bool
    rolled: bool = False  # its rollups came with it (history taken from an earlier format)
    rollups: dict | None = None  # step -> Rollup, made by the first read that needs them

    def rollup(self, step: float) -> Rollup:
        """Return this chunk's buckets of one step, computed once."""
        if self.rollups is None:
            self.rollups = {}
        found = self.rollups.get(step)
        if found is None:
            found = self.rollups[step] = roll_up(self.ts, self.val, self.prev, step)
        return found


class Store:
    """Keep every series in a head in memory and its history in an archive, bounded by retention.

    Appends and reads take one lock, so any number of threads may write and read. Samples
    older than a series' newest go straight into sealed chunks (a backfill); samples older
    than the longest retention are refused (counted in ``too_old``).
    """

    def __init__(
        self,
        raw: Tier,
        raw_resolution: float,
        rollups: Iterable[Tier] = (),
        clock: Callable[[], float] = time.time,
        archive: Archive | None = None,
        max_series: int = 200_000,
        initial_rows: int = 64,
    ):
        if not raw.raw:
            raise ValueError("the raw tier has step 0")
        self.tiers = (raw, *sorted(rollups, key=lambda t: t.step))
        self.longest = max(t.retention for t in self.tiers)
        self.min_step = raw_resolution  # the finest step worth asking for
        self.clock = clock
        self.max_series = max_series
        self.archive = archive if archive is not None else Archive()
        self.journal = self.archive.durable  # a log on disk puts the head back after a restart
        self._lock = threading.RLock()
        self._rows = 0
        self._grow(initial_rows)
        self._ids: dict[tuple[str, Labels], int] = {}
        self._series: list[Series | None] = []
        self._free: list[int] = []
        self._by_name: dict[str, dict[int, Series]] = {}
        self._unsaved: list[Series] = []
        self.specs = MetricRegistry()  # every metric's one declaration
        self._specs_saved = 0
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._queue: dict[int, list[_Sealed]] = {}
        self._queued = 0
        self._imported: list[tuple[int, float, Rollup]] = []
        self._seq = 1  # the write-ahead record the next flush writes
        self._next_upkeep = 0.0
        self._next_checkpoint = 0.0
        self.appended = 0
        self.version = 0  # changes so far (appends, removals): what an answer computed at one was read from
        self._changes: deque[tuple[int, float]] = deque(maxlen=CHANGES_KEPT)  # (version, oldest time)
        self.changed = threading.Event()  # set at every change, for whoever renders ahead of readers
        self.backfilled = 0
        self.too_old = 0
        self.not_finite = 0
        self._load()

    # ----- memory layout
    def _grow(self, rows: int) -> None:
        def more(arr: np.ndarray | None, fill, dtype, width: int | None = None) -> np.ndarray:
            shape = (rows,) if width is None else (rows, width)
            new = np.full(shape, fill, dtype=dtype)
            if arr is not None:
                new[: len(arr)] = arr
            return new

        first = self._rows == 0
        get = (lambda name: None) if first else (lambda name: getattr(self, name))
        self._head_ts = more(get("_head_ts"), np.nan, np.float64, HEAD_CHUNK)
        self._head_val = more(get("_head_val"), np.nan, np.float64, HEAD_CHUNK)
        self._head_n = more(get("_head_n"), 0, np.int64)
        self._head_seq = more(get("_head_seq"), _EMPTY, np.int64)
        self._newest = more(get("_newest"), -np.inf, np.float64)
        self._last_value = more(get("_last_value"), np.nan, np.float64)
        self._sealed_until = more(get("_sealed_until"), -np.inf, np.float64)
        self._sealed_last = more(get("_sealed_last"), np.nan, np.float64)
        self._fragments = more(get("_fragments"), 0, np.int32, len(self.tiers))
        self._rows = rows

    def _reset_row(self, sid: int) -> None:
        self._head_n[sid] = 0
        self._head_seq[sid] = _EMPTY
        self._newest[sid] = -np.inf
        self._last_value[sid] = np.nan
        self._sealed_until[sid] = -np.inf
        self._sealed_last[sid] = np.nan
        self._fragments[sid] = 0

    # ----- metadata
    def declare(self, spec: MetricSpec, owner: str = "pulseboard") -> None:
        """Record a producer's declaration of a metric; another producer's different one is a MetricClash."""
        self.specs.declare(spec, owner)

    def series(self, name: str) -> list[Series]:
        """Return the series of one metric name."""
        with self._lock:
            return list(self._by_name.get(name, {}).values())

    def names(self) -> list[str]:
        """Return every metric name that has at least one series."""
        with self._lock:
            return sorted(self._by_name)

    @property
    def series_count(self) -> int:
        return len(self._ids)

    def lookup(self, name: str, labels: Labels) -> Series | None:
        """Return the series of a name and label set, if it exists."""
        with self._lock:
            sid = self._ids.get((name, labels))
            return None if sid is None else self._series[sid]

    def _create(self, name: str, labels: Labels, sid: int | None = None, saved: bool = False) -> int:
        if sid is None:
            sid = self._free.pop() if self._free else len(self._series)
        while sid >= self._rows:
            self._grow(
                self._rows + max(64, self._rows // 4)
            )  # a quarter more: the head is most of the memory
        while sid >= len(self._series):
            self._series.append(None)
        self._reset_row(sid)
        series = Series(sid, name, labels)
        self._series[sid] = series
        self._ids[(name, labels)] = sid
        self._by_name.setdefault(name, {})[sid] = series
        if not saved:
            self._unsaved.append(series)
        return sid

    def admit(self, samples: Iterable[Sample] | Iterable[tuple[str, Labels]]) -> None:
        """Raise SeriesLimitError if storing these samples (or series keys) would pass the series cap."""
        with self._lock:
            self._check_cap({(s[0], s[1]) for s in samples if (s[0], s[1]) not in self._ids})

    def _check_cap(self, fresh: set | dict) -> None:
        if fresh and len(self._ids) + len(fresh) > self.max_series:
            raise SeriesLimitError(
                f"the store holds {len(self._ids):,} series and may hold {self.max_series:,} "
                f"(store.max_series): these samples would add {len(fresh):,} more"
            )

    # ----- writing
    def append(self, samples: Iterable[Sample], durable: bool = False) -> int:
        """Store samples (each a Sample) through the one write path: ``append_rows``."""
        samples = samples if isinstance(samples, list) else list(samples)
        if not samples:
            return 0
        rows: dict[tuple[str, Labels], int] = {}
        setdefault = rows.setdefault
        n = len(samples)
        row = np.fromiter((setdefault((s[0], s[1]), len(rows)) for s in samples), dtype=np.int64, count=n)
        ts = np.fromiter((s[3] for s in samples), dtype=np.float64, count=n)
        val = np.fromiter((s[2] for s in samples), dtype=np.float64, count=n)
        return self.append_rows(list(rows), row, ts, val, durable)

    def append_rows(
        self,
        keys: list[tuple[str, Labels]],
        rows: np.ndarray,
        ts: np.ndarray,
        val: np.ndarray,
        durable: bool = False,
        admit: Callable[[list[int]], None] | None = None,
    ) -> int:
        """Store samples given in columns; return how many were kept. The one write path.

        ``keys`` are series (name, labels), ``rows`` the key of each sample (an index into them),
        ``ts`` and ``val`` its time and value. One lock, one look-up of each key, one log record.
        ``admit(new)`` is called with the indices of the keys not stored yet, under the lock, before
        anything is kept: it may raise to refuse them all.
        ``durable``: the samples are in the write-ahead log on disk before this returns (a push
        acknowledged survives a kill -9), or none of them is kept and NotStored says why, so a
        client's retry never counts them twice. Raise SeriesLimitError, storing nothing, when they
        would make more series than the cap.
        """
        if len(rows) == 0:
            return 0
        with self._lock:
            get = self._ids.get
            found = [get(key, -1) for key in keys]
            created: list[int] = []
            if admit is not None:
                admit([i for i, sid in enumerate(found) if sid == -1])
            if -1 in found:
                fresh = dict.fromkeys(k for k, sid in zip(keys, found) if sid == -1)
                self._check_cap(fresh)
                made = {key: self._create(*key) for key in fresh}
                created = list(made.values())
                found = [made[k] if sid == -1 else sid for k, sid in zip(keys, found)]
            sid = np.asarray(found, dtype=np.int64)[rows]
            ts = np.asarray(ts, dtype=np.float64)
            val = np.asarray(val, dtype=np.float64)
            if durable and self.journal:
                seq = self._log(sid, ts, val, created)
                kept = self._append_arrays(sid, ts, val, False, seq)
            else:
                kept = self._append_arrays(sid, ts, val, self.journal, self._seq)
            if self._queued > INLINE_FLUSH:
                try:
                    self.flush()
                except (OSError, sqlite3.Error) as exc:  # kept in memory for the next flush
                    log.error("store: sealed chunks not written yet (%s); the next flush retries", exc)
            return kept

    def _log(self, sid: np.ndarray, ts: np.ndarray, val: np.ndarray, created: list[int]) -> int:
        """Write one write-ahead record (and the series it makes) before the samples enter the head.

        On failure the series it made are removed again and NotStored is raised: nothing is kept.
        """
        fresh = [(s.id, s.name, s.labels) for s in self._unsaved if self._series[s.id] is s]
        seq = self._seq
        try:
            self.archive.write(fresh, (seq, sid, ts, val), [], [], None, None)
        except (OSError, sqlite3.Error) as exc:
            for row in created:
                self._remove(row)
            raise NotStored(f"the samples could not be written to the data directory ({exc})") from None
        self._unsaved = []
        self._seq += 1
        return seq

    def _append_arrays(self, sid: np.ndarray, ts: np.ndarray, val: np.ndarray, log: bool, seq: int) -> int:
        finite = np.isfinite(ts) & ~np.isinf(val)  # NaN values are samples (and staleness markers)
        if not finite.all():
            self.not_finite += int((~finite).sum())
            sid, ts, val = sid[finite], ts[finite], val[finite]
        recent = ts >= self.clock() - self.longest
        if not recent.all():
            self.too_old += int((~recent).sum())
            sid, ts, val = sid[recent], ts[recent], val[recent]
        if len(sid) == 0:
            return 0
        order = np.lexsort((ts, sid))
        sid, ts, val = sid[order], ts[order], val[order]
        self._changed(float(ts.min()))
        fresh = ts >= self._newest[sid]
        if not fresh.all():
            late = ~fresh
            self._backfill(sid[late], ts[late], val[late])
            sid, ts, val = sid[fresh], ts[fresh], val[fresh]
        if len(sid):
            self._into_head(sid, ts, val, seq)
            if log:
                self._pending.append((sid, ts, val))
        kept = len(order)
        self.appended += kept
        return kept

    def _into_head(self, sid: np.ndarray, ts: np.ndarray, val: np.ndarray, seq: int) -> None:
        """Append samples sorted by series, then time, each newer than its series' newest."""
        n = len(sid)
        starts = np.flatnonzero(np.append(True, sid[1:] != sid[:-1]))
        counts = np.diff(np.append(starts, n))
        group = sid[starts]
        have = self._head_n[group]
        self._head_seq[group[have == 0]] = seq
        fits = have + counts < HEAD_CHUNK
        if fits.all():
            rank = np.arange(n) - np.repeat(starts, counts)
            pos = np.repeat(have, counts) + rank
            self._head_ts[sid, pos] = ts
            self._head_val[sid, pos] = val
            self._head_n[group] += counts
        else:
            inside = np.repeat(fits, counts)
            if inside.any():
                rank = (np.arange(n) - np.repeat(starts, counts))[inside]
                pos = np.repeat(have, counts)[inside] + rank
                self._head_ts[sid[inside], pos] = ts[inside]
                self._head_val[sid[inside], pos] = val[inside]
                self._head_n[group[fits]] += counts[fits]
            for i in np.flatnonzero(~fits).tolist():
                self._overflow(
                    int(group[i]),
                    ts[starts[i] : starts[i] + counts[i]],
                    val[starts[i] : starts[i] + counts[i]],
                    seq,
                )
        last = starts + counts - 1
        self._newest[group] = ts[last]
        self._last_value[group] = val[last]

    def _overflow(self, sid: int, ts: np.ndarray, val: np.ndarray, seq: int) -> None:
        """Seal every full chunk of a head plus new samples; the rest (all new) stays in the head."""
        h = int(self._head_n[sid])
        all_ts = np.concatenate([self._head_ts[sid, :h], ts])
        all_val = np.concatenate([self._head_val[sid, :h], val])
        full = len(all_ts) // HEAD_CHUNK * HEAD_CHUNK
        for k in range(0, full, HEAD_CHUNK):
            self._seal(sid, all_ts[k : k + HEAD_CHUNK], all_val[k : k + HEAD_CHUNK])
        rest = len(all_ts) - full
        self._head_ts[sid, :rest] = all_ts[full:]
        self._head_val[sid, :rest] = all_val[full:]
        self._head_n[sid] = rest
        self._head_seq[sid] = seq if rest else _EMPTY

    def _seal(self, sid: int, ts: np.ndarray, val: np.ndarray) -> None:
        prev = float(self._sealed_last[sid])
        self._queue.setdefault(sid, []).append(_Sealed(ts.copy(), val.copy(), prev, False))
        self._queued += len(ts)
        numbers = val[np.isfinite(val)]
        if len(numbers):  # a counter's next increase counts from its last number
            self._sealed_last[sid] = numbers[-1]
        self._sealed_until[sid] = ts[-1]

    def _backfill(self, sid: np.ndarray, ts: np.ndarray, val: np.ndarray) -> None:
        """Queue history older than the head as chunks of its own (sorted by series, then time)."""
        starts = np.flatnonzero(np.append(True, sid[1:] != sid[:-1]))
        ends = np.append(starts[1:], len(sid))
        for a, b in zip(starts.tolist(), ends.tolist()):
            chunks = self._queue.setdefault(int(sid[a]), [])
            for k in range(a, b, BACKFILL_CHUNK):
                j = min(b, k + BACKFILL_CHUNK)
                chunks.append(_Sealed(ts[k:j].copy(), val[k:j].copy(), np.nan, True))
            self._queued += b - a
        self.backfilled += len(sid)

    def restore(self, name: str, labels: Labels, ts: np.ndarray, val: np.ndarray, rollups: dict) -> None:
        """Take one series' history from an earlier format: raw samples, and rollups (step -> Rollup)
        that already count them. The next flush writes it all."""
        with self._lock:
            self._changed(-math.inf)
            sid = self._ids.get((name, labels))
            if sid is None:
                self._check_cap({(name, labels)})
                sid = self._create(name, labels)
            now = self.clock()
            order = np.argsort(ts, kind="stable")
            ts, val = ts[order], val[order]
            keep = ts >= now - self.tiers[0].retention
            ts, val = ts[keep], val[keep]
            for k in range(0, len(ts), HEAD_CHUNK):
                chunk = _Sealed(ts[k : k + HEAD_CHUNK], val[k : k + HEAD_CHUNK], np.nan, False, rolled=True)
                self._queue.setdefault(sid, []).append(chunk)
            if len(ts) and ts[-1] >= self._newest[sid]:
                self._newest[sid] = self._sealed_until[sid] = ts[-1]
                self._last_value[sid] = self._sealed_last[sid] = val[-1]
            steps = {t.step: t for t in self.tiers[1:]}
            for step, r in rollups.items():
                tier = steps.get(step)
                if tier is not None:
                    r = r.within(now - tier.retention, np.inf)
                    if len(r):
                        self._imported.append((sid, step, r))
                        last = float(r.start[-1])
                        if last > self._newest[sid]:  # older than the raw retention: the rollups know it
                            self._newest[sid] = self._sealed_until[sid] = last
                            self._last_value[sid] = self._sealed_last[sid] = float(r.last[-1])
            self.appended += len(ts)

    def seal_heads(self) -> None:
        """Seal every head chunk now, whatever its size, so the next flush writes all history to chunks."""
        with self._lock:
            self._seal_old_heads(np.inf)

    def _seal_old_heads(self, now: float) -> None:
        old = np.flatnonzero((self._head_n > 0) & (self._head_ts[:, 0] < now - HEAD_SPAN))
        for sid in old.tolist():
            h = int(self._head_n[sid])
            self._seal(sid, self._head_ts[sid, :h], self._head_val[sid, :h])
            self._head_n[sid] = 0
            self._head_seq[sid] = _EMPTY

    # ----- flushing and upkeep
    def flush(self) -> None:
        """Write sealed chunks, their rollups and the write-ahead log in one transaction; then tidy up.

        A push calls this before it answers, so an acknowledged sample survives a kill -9.
        On a write error everything stays in memory for the next flush.
        """
        with self._lock:
            now = self.clock()
            self._seal_old_heads(now)
            rows, cached, sealed_sids, fragments = [], [], set(), []
            raw_from = now - self.tiers[0].retention
            chunks = [(sid, c) for sid, queued in self._queue.items() for c in queued]
            for sid, c in chunks:
                if not c.backfill:
                    sealed_sids.add(sid)
                if c.ts[-1] >= raw_from:
                    rows.append(raw_row(sid, c.ts, c.val))
                    cached.append(np.vstack([c.ts, c.val]))
                    fragments.append((sid, 0))
            # One fragment per series and tier for the chunks it sealed since the last flush (they
            # follow each other), and one per piece of late history.
            runs = []
            for sid, queued in self._queue.items():
                live = [c for c in queued if not c.backfill and not c.rolled]
                if live:
                    runs.append((sid, live))
                runs += [(sid, [c]) for c in queued if c.backfill and not c.rolled]
            for k, tier in enumerate(self.tiers[1:], start=1):
                due = [(sid, run) for sid, run in runs if run[-1].ts[-1] >= now - tier.retention]
                if not due:
                    continue
                rolled = roll_up_many(
                    np.concatenate([c.ts for _, run in due for c in run]),
                    np.concatenate([c.val for _, run in due for c in run]),
                    np.array([run[0].prev for _, run in due]),
                    np.array([sum(len(c.ts) for c in run) for _, run in due]),
                    tier.step,
                )
                for (sid, _), r in zip(due, rolled):
                    rows.append(rollup_row(sid, tier.step, r))
                    cached.append(r.block())
                    fragments.append((sid, k))
            for sid, step, r in self._imported:
                rows.append(rollup_row(sid, step, r))
                cached.append(r.block())
            wal, checkpoint = None, self.journal and now >= self._next_checkpoint
            if checkpoint:
                # Every head whole in one record: with the chunks of this flush it is the whole state,
                # so the older records go and a start replays at most CHECKPOINT_EVERY of the log.
                used = len(self._series)
                held = np.flatnonzero(self._head_n[:used] > 0)
                counts = self._head_n[held]
                inside = np.arange(HEAD_CHUNK)[None, :] < counts[:, None]
                if len(held):
                    heads = (self._head_ts[held][inside], self._head_val[held][inside])
                    wal = (self._seq, np.repeat(held, counts), *heads)
                wal_before = self._seq
            else:
                if self._pending:
                    sid, ts, val = (np.concatenate(p) for p in zip(*self._pending))
                    wal = (self._seq, sid, ts, val)
                waiting = self._head_seq[: len(self._series)]
                wal_before = (int(waiting.min()) if len(waiting) else _EMPTY) if self.journal else None
                if wal_before is not None:
                    wal_before = min(wal_before, self._seq + 1)
            sealed = [
                (float(self._sealed_until[s]), _or_none(self._sealed_last[s]), s) for s in sorted(sealed_sids)
            ]
            specs = list(self.specs.values()) if len(self.specs) != self._specs_saved else None
            fresh = [(s.id, s.name, s.labels) for s in self._unsaved if self._series[s.id] is s]
            through = self._seq if wal is not None else self._seq - 1
            ids = self.archive.write(fresh, wal, rows, sealed, wal_before, specs, through)
            # Written: what was waiting is now in the archive.
            for cid, block in zip(ids, cached):
                self.archive.remember(cid, block)
            self._queue, self._queued, self._pending, self._unsaved, self._imported = {}, 0, [], [], []
            if checkpoint:
                self._head_seq[held] = self._seq
                self._next_checkpoint = now + CHECKPOINT_EVERY
            if wal is not None:
                self._seq += 1
            if specs is not None:
                self._specs_saved = len(specs)
            for sid, k in fragments:
                self._fragments[sid, k] += 1
            self._compact()
            if now >= self._next_upkeep:
                self._upkeep(now)

    def _compact(self, most: int = 64) -> None:
        """Merge the chunks of series that have piled up enough, a few series per flush.

        Raw chunks are merged into chunks of about ``RAW_MERGE`` samples (fewer rows, better
        compression, as Prometheus compacts its blocks); rollup fragments into one chunk per
        ``PARTITION`` buckets.
        """
        due = np.argwhere(self._fragments >= COMPACT_AFTER)[:most]
        for sid, k in due.tolist():
            step = self.tiers[k].step
            rows = self.archive.rows_of(sid, step)
            groups: list[list[int]] = []
            if k == 0:  # a merged chunk also spans at most a quarter of the raw retention
                size, began, span = RAW_MERGE, -np.inf, self.tiers[0].retention / 4
                for cid, start, samples in rows:
                    if size + samples > RAW_MERGE or start - began > span:
                        groups.append([])
                        size, began = 0, start
                    groups[-1].append(cid)
                    size += samples
            else:
                partitions: dict[int, list[int]] = {}
                for cid, start, _ in rows:
                    partitions.setdefault(math.floor(start / (step * PARTITION)), []).append(cid)
                groups = list(partitions.values())
            self.archive.compact(sid, step, [ids for ids in groups if len(ids) > 1])
            self._fragments[sid, k] = 0

    def _upkeep(self, now: float) -> None:
        """Drop chunks past their tier's retention, and series with no sample for the longest one."""
        self._next_upkeep = now + UPKEEP_EVERY
        self.archive.expire({t.step: now - t.retention for t in self.tiers})
        used = len(self._series)
        dead = np.flatnonzero(self._newest[:used] < now - self.longest).tolist()
        dead = [s for s in dead if self._series[s] is not None]
        if not dead:
            return
        self.archive.forget(dead)
        for sid in dead:
            self._remove(sid)

    def _changed(self, oldest: float) -> None:
        self.version += 1
        self._changes.append((self.version, oldest))
        self.changed.set()

    def changed_since(self, version: int) -> float | None:
        """Return the time of the oldest sample stored since ``version`` (inf: nothing stored since),
        or None when that is no longer known (too long ago, or a series was removed): an answer
        computed at ``version`` holds for every time before it."""
        with self._lock:
            if version == self.version:
                return math.inf
            if not self._changes or self._changes[0][0] > version + 1:
                return None
            oldest = math.inf
            for changed, at in reversed(self._changes):
                if changed <= version:
                    break
                oldest = min(oldest, at)
            return oldest

    def _remove(self, sid: int) -> None:
        """Forget one series in memory and free its row."""
        self._changed(-math.inf)
        series = self._series[sid]
        self._series[sid] = None
        del self._ids[(series.name, series.labels)]
        named = self._by_name[series.name]
        del named[sid]
        if not named:
            del self._by_name[series.name]
        self._queue.pop(sid, None)
        self._reset_row(sid)
        self._free.append(sid)

    def _load(self) -> None:
        """Put back the series, their declarations and the head as the last run left them."""
        for sid, name, labels, until, last in self.archive.load_series():
            self._create(name, labels, sid, saved=True)
            self._sealed_until[sid] = self._newest[sid] = until
            # The log replays times in whole milliseconds: one in the last sealed millisecond is not late.
            if math.isfinite(until):
                self._newest[sid] = min(until, float(to_ms(until)) / 1000.0)
            self._sealed_last[sid] = self._last_value[sid] = last
        self._free = [i for i, s in enumerate(self._series) if s is None]
        for spec in self.archive.load_specs():
            self.specs.remember(spec)
        self._specs_saved = len(self.specs)
        in_chunks: dict[int, int] = {}  # samples at a series' last sealed time that a chunk holds
        through = self.archive.flushed_through()
        for seq, sid, ts, val in self.archive.wal():
            known = (sid >= 0) & (sid < len(self._series))
            known[known] = [self._series[i] is not None for i in sid[known].tolist()]
            sid, ts, val = sid[known], ts[known], val[known]
            if through is not None and seq > through:
                # Logged by a push after the last flush: no chunk holds any of it (late history included).
                self._append_arrays(sid, ts, val, log=False, seq=seq)
                self._seq = max(self._seq, seq + 1)
                continue
            # The log and the chunks keep whole milliseconds: compare times as they hold them.
            sealed = self._sealed_until[sid]
            stamp, until = to_ms(ts), to_ms(np.where(np.isfinite(sealed), sealed, 0.0))
            keep = stamp > until  # what a chunk already holds is not added twice
            # Samples sharing the chunk's last time may have been sealed in part (a batch of pushed
            # increments at one time, say): the log holds them in order, so skip as many as the chunk
            # holds and keep the rest.
            for i in np.flatnonzero(stamp == until).tolist():
                series = int(sid[i])
                if series not in in_chunks:
                    in_chunks[series] = self._sealed_at(series, int(stamp[i]))
                if in_chunks[series] > 0:
                    in_chunks[series] -= 1
                else:
                    keep[i] = True
            self._append_arrays(sid[keep], ts[keep], val[keep], log=False, seq=seq)
            self._seq = max(self._seq, seq + 1)

    def _sealed_at(self, series_id: int, moment_ms: int) -> int:
        """Return how many samples of a series the chunks on disk hold at one time (in milliseconds)."""
        moment = moment_ms / 1000.0
        if moment < self.clock() - self.tiers[0].retention:
            # Past the raw tier only rollups hold it, and they hold every sample up to the sealed time.
            return np.iinfo(np.int64).max
        parts = self.archive.samples(series_id, moment - 0.001, moment + 0.001)
        return sum(int((to_ms(t) == moment_ms).sum()) for t, _ in parts)

    def close(self) -> None:
        """Write what is waiting and close the archive."""
        with self._lock:
            self.flush()
            self.archive.close()

    # ----- reading
    def read_raw(
        self, series_id: int, start: float, end: float, numbers_only: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (timestamps, values) of the raw tier within [start, end] and its retention.

        NaN samples and staleness markers are left out unless ``numbers_only`` is False (PromQL
        evaluates them as Prometheus does).
        """
        lo = max(start, self.clock() - self.tiers[0].retention)
        with self._lock:
            parts = self.archive.samples(series_id, lo, end)
            parts += [(c.ts, c.val) for c in self._queue.get(series_id, ())]
            h = int(self._head_n[series_id])
            parts.append((self._head_ts[series_id, :h], self._head_val[series_id, :h]))
            ts = np.concatenate([p[0] for p in parts])
            val = np.concatenate([p[1] for p in parts])
        if len(ts) > 1 and (ts[1:] < ts[:-1]).any():  # history that arrived late sits among the rest
            order = np.argsort(ts, kind="stable")
            ts, val = ts[order], val[order]
        mask = (ts >= lo) & (ts <= end)
        if numbers_only:
            mask &= ~np.isnan(val)
        return ts[mask], val[mask]

    def read_rollup(self, tier: Tier, series_id: int, start: float, end: float) -> Rollup:
        """Return the rollup buckets of one tier that start within [start, end] and its retention."""
        now = self.clock()
        step = tier.step
        slots = max(1, math.ceil(tier.retention / step))
        first = max(math.floor(start / step), math.floor(now / step) - slots + 1) * step
        last = math.floor(end / step) * step
        with self._lock:
            parts = self.archive.rollups(series_id, step, first, last + step)
            queued = [c for c in self._queue.get(series_id, ()) if not c.rolled]
            queued.sort(key=lambda c: c.ts[0])
            parts += [c.rollup(step) for c in queued]
            h = int(self._head_n[series_id])
            if h:  # the head continues from the newest sealed value
                head_ts, head_val = self._head_ts[series_id, :h].copy(), self._head_val[series_id, :h].copy()
                parts.append(roll_up(head_ts, head_val, float(self._sealed_last[series_id]), step))
        return merge_rollups(parts).within(first, last)

    def last_value(self, series_id: int) -> float:
        """Return the newest value of a series (NaN when it has none)."""
        return float(self._last_value[series_id])

    def newest(self, series_id: int) -> float:
        """Return the timestamp of a series' newest sample (-inf when it has none)."""
        return float(self._newest[series_id])

    def latest(self, names: Iterable[str] | None = None) -> list[tuple[Series, float, float]]:
        """Return (series, timestamp, value) of the newest sample of every live series, or of some names.

        A series with no sample for ``STALE_AFTER`` seconds, or ended by a staleness marker, has
        stopped: it is left out.
        """
        fresh_after = self.clock() - STALE_AFTER
        with self._lock:
            if names is None:
                series = [s for s in self._series if s is not None]
            else:
                series = [s for n in names for s in self._by_name.get(n, {}).values()]
            rows = np.fromiter((s.id for s in series), dtype=np.int64, count=len(series))
            ts, val = self._newest[rows].copy(), self._last_value[rows].copy()
        live = (ts >= fresh_after) & ~is_stale(val)
        return [(s, float(t), float(v)) for s, t, v, ok in zip(series, ts, val, live) if ok]

    def memory_bytes(self) -> int:
        """Return the bytes the head and the chunks waiting for a flush hold (not the read cache)."""
        return sum(v for k, v in self.memory_parts().items() if k != "read cache")

    def memory_parts(self) -> dict[str, int]:
        """Return the bytes of the head, the per-series bookkeeping, what waits for a flush, the cache."""
        with self._lock:
            head = self._head_ts.nbytes + self._head_val.nbytes
            rows = sum(
                a.nbytes
                for a in (
                    self._head_n,
                    self._head_seq,
                    self._newest,
                    self._last_value,
                    self._sealed_until,
                    self._sealed_last,
                    self._fragments,
                )
            )
            waiting = sum(c.ts.nbytes * 2 for chunks in self._queue.values() for c in chunks)
            waiting += sum(p[0].nbytes * 3 for p in self._pending)
            return {"head": head, "series": rows, "waiting": waiting, "read cache": self.archive.cache.bytes}


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def build_store(
    settings: Any, clock: Callable[[], float] = time.time, archive: Archive | None = None
) -> Store:
    """Return a store shaped by the environment's settings (``settings.store``), on an archive.

    Without an archive the history is kept in memory (an agent, a replica reading from Prometheus).
    """
    cfg = settings.store
    return Store(
        Tier(0, cfg.raw.retention),
        cfg.raw.resolution,
        [Tier(t.step, t.retention) for t in cfg.rollups],
        clock=clock,
        archive=archive if archive is not None else Archive(None, cfg.cache_size),
        max_series=cfg.max_series,
    )
