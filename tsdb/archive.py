"""The store's history on disk: compressed chunks in one SQLite file, read back through a bounded cache.

One table of chunks (a series' raw samples, or one rollup tier's buckets, over a time span),
one of series, and a write-ahead log of the samples still in the store's head. Everything one
flush writes is one SQLite transaction: a crash leaves the file as it was before or after it.
An archive without a directory keeps the same tables in memory (an agent, a replica, a test).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tsdb import salvage
from tsdb.chunks import (
    BLOCK_OVERHEAD,
    ChunkDamaged,
    Rollup,
    decode_rollup,
    decode_samples,
    encode_rollup,
    encode_samples,
    merge_rollups,
)
from tsdb.metrics import Labels, MetricSpec
from tsdb.persistence import set_aside

log = logging.getLogger(__name__)

FILE = "store.sqlite"
FORMAT = 2  # the previous format (1) was a diskcache directory of whole-store snapshots
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL,
    sealed_until REAL NOT NULL, sealed_last REAL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, series INTEGER NOT NULL, step REAL NOT NULL,
    start REAL NOT NULL, end REAL NOT NULL, samples INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_of_series ON chunks (series, step, end, start);
CREATE TABLE IF NOT EXISTS wal (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS damaged (
    series INTEGER, step REAL, start REAL, end REAL, data BLOB, reason TEXT, found REAL
);
"""
INSERT_CHUNK = "INSERT INTO chunks (series, step, start, end, samples, data) VALUES (?, ?, ?, ?, ?, ?)"


class _Cache:
    """Decoded chunks by chunk id, least recently used dropped first once past ``limit`` bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[int, tuple[object, int]] = OrderedDict()

    def get(self, cid: int):
        item = self._items.get(cid)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(cid)
        return item[0]

    def put(self, cid: int, value: np.ndarray) -> None:
        size = value.nbytes + BLOCK_OVERHEAD
        if size > self.limit:
            return
        old = self._items.pop(cid, None)
        if old is not None:
            self.bytes -= old[1]
        self._items[cid] = (value, size)
        self.bytes += size
        while self.bytes > self.limit:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def drop(self, ids: Iterable[int]) -> None:
        for cid in ids:
            item = self._items.pop(cid, None)
            if item is not None:
                self.bytes -= item[1]


class Archive:
    """Chunks, series and the write-ahead log of one store, on disk (or in memory without a directory)."""

    def __init__(self, directory: str | Path | None = None, cache_size: int = 32 * 2**20):
        self.directory = Path(directory) if directory is not None else None
        self.problems: list[str] = []  # what could not be read back, for the status view
        self.cache = _Cache(cache_size)
        self._lock = threading.RLock()
        if self.directory is None:
            self.db = self._connect(":memory:")
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / FILE
        damage = _damage(path)
        if damage is None:
            try:
                self.db = self._connect(str(path))
                return
            except sqlite3.DatabaseError as exc:
                damage = str(exc)
        try:
            found = salvage.read(path)
        except (OSError, ValueError) as exc:
            # Nothing readable: keep it aside for inspection and start afresh rather than crash-loop.
            aside = set_aside(self.directory)
            self.directory.mkdir(parents=True)
            self._problem(f"{self.directory}: unreadable ({damage}; {exc}); moved to {aside}")
            self.db = self._connect(str(path))
            return
        aside = set_aside(self.directory)
        self.directory.mkdir(parents=True)
        self.db = self._connect(str(path))
        self._restore(found, f"{path} was damaged ({damage})", aside)

    def _restore(self, found: salvage.Salvaged, what: str, aside: Path) -> None:
        """Write what a damaged file still held into the new one, and say what was kept and lost."""
        chunks = {cid: row for cid, row in found.chunks.items() if row[0] in found.series}
        orphans = [row for row in found.chunks.values() if row[0] not in found.series]
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO series VALUES (?, ?, ?, ?, ?)", [(sid, *row) for sid, row in found.series.items()]
        )
        db.executemany(
            "INSERT INTO chunks (id, series, step, start, end, samples, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(cid, *row) for cid, row in chunks.items()],
        )
        db.executemany("INSERT INTO wal VALUES (?, ?)", list(found.wal.items()))
        db.executemany("INSERT INTO damaged VALUES (?, ?, ?, ?, ?, ?, ?)", found.damaged)
        db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [(k, v) for k, v in found.meta.items() if k != "format"],
        )
        db.execute("COMMIT")
        kept = sum(row[4] for row in chunks.values() if row[1] == 0)
        lost = sum(row[4] for row in orphans if row[1] == 0)
        series_lost = len({r[0] for r in orphans})
        losses = [
            f"{len(orphans):,} chunks ({lost:,} raw samples) of {series_lost:,} series named in damaged pages"
            if orphans
            else "",
            f"{found.unreadable_pages:,} pages" if found.unreadable_pages else "",
            f"{found.unreadable_rows:,} rows that could not be read" if found.unreadable_rows else "",
        ]
        lost_text = ", ".join(text for text in losses if text) or "nothing that could be found"
        self._problem(
            f"{what}: recovered {len(found.series):,} series and {len(chunks):,} chunks holding {kept:,} raw "
            f"samples, {len(found.wal):,} log records; lost {lost_text}; "
            f"the damaged file is kept in {aside}"
        )

    @property
    def durable(self) -> bool:
        """True when what is written survives the process."""
        return self.directory is not None

    def _connect(self, target: str) -> sqlite3.Connection:
        db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed transaction survives the process being killed.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA cache_size=-2048")  # 2 MiB of pages: the decoded cache does the caching
            db.executescript(SCHEMA)
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if found is None:
                db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT),))
            elif int(found[0]) != FORMAT:
                raise sqlite3.DatabaseError(f"format {found[0]} is not {FORMAT}")
            db.execute("SELECT count(*) FROM series").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _problem(self, message: str) -> None:
        log.error("store: %s", message)
        self.problems.append(message)

    # ----- what a start reads
    def load_series(self) -> list[tuple[int, str, Labels, float, float]]:
        """Return every stored series: id, name, labels, newest sealed time and value."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, name, labels, sealed_until, sealed_last FROM series"
            ).fetchall()
        out = []
        for sid, name, labels, until, last in rows:
            pairs = tuple(tuple(p) for p in json.loads(labels))
            out.append((sid, name, pairs, until, np.nan if last is None else last))
        return out

    def load_specs(self) -> list[MetricSpec]:
        """Return the metric declarations saved with the history."""
        with self._lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'specs'").fetchone()
        if row is None:
            return []
        try:
            return [MetricSpec(**item) for item in json.loads(row[0])]
        except (ValueError, TypeError) as exc:
            self._problem(f"metric declarations unreadable ({exc}); they come back as collectors run")
            return []

    def flushed_through(self) -> int | None:
        """Return the last log record a flush has written the samples of (None: every record)."""
        with self._lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'flushed_through'").fetchone()
        return None if row is None else int(row[0])

    def wal(self) -> Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Yield the write-ahead log's records, oldest first: seq, series ids, times, values."""
        with self._lock:
            rows = self.db.execute("SELECT seq, data FROM wal ORDER BY seq").fetchall()
        for seq, blob in rows:
            try:
                n = int.from_bytes(blob[:8], "little")
                sid = np.frombuffer(blob, dtype=np.int64, count=n, offset=8)
                ts, val = decode_samples(blob[8 + 8 * n :])  # the block's two rows
                yield seq, sid, ts, val
            except (ChunkDamaged, ValueError) as exc:
                self._problem(f"write-ahead record {seq} unreadable ({exc}); skipped")

    # ----- writing
    def write(
        self,
        series: list[tuple[int, str, Labels]],
        wal: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None,
        chunks: list[tuple[int, float, float, float, int, bytes]],
        sealed: list[tuple[float, float, int]],
        wal_before: int | None,
        specs: list[MetricSpec] | None,
        flushed_through: int | None = None,
    ) -> list[int]:
        """Write one flush in one transaction; return the row ids of the chunks, in order.

        ``series`` are new series, ``wal`` the samples appended since the last flush (seq, ids,
        times, values), ``chunks`` (series, step, start, end, samples, bytes) what was sealed,
        ``sealed`` each series' newest sealed time and value, ``wal_before`` the first log record
        still needed, ``flushed_through`` the last log record all of whose samples are now in chunks
        or in the head (a flush's); the samples of later records are in no chunk yet.
        """
        if self.directory is not None and not (self.directory / FILE).exists():
            # Writes would go on into a file nobody can open again: say so instead.
            raise OSError(f"{self.directory / FILE} is gone: the data directory was removed or unmounted")
        with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                if series:
                    db.executemany(
                        "INSERT OR REPLACE INTO series VALUES (?, ?, ?, ?, NULL)",
                        [(sid, name, json.dumps(labels), -np.inf) for sid, name, labels in series],
                    )
                if wal is not None:
                    seq, sid, ts, val = wal
                    blob = len(sid).to_bytes(8, "little") + sid.astype(np.int64).tobytes()
                    db.execute("INSERT INTO wal VALUES (?, ?)", (seq, blob + encode_samples(ts, val)))
                ids: list[int] = []
                if chunks:
                    db.executemany(INSERT_CHUNK, chunks)
                    # AUTOINCREMENT hands out consecutive ids within one statement and one writer.
                    (last,) = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
                    ids = list(range(last - len(chunks) + 1, last + 1))
                if sealed:
                    db.executemany("UPDATE series SET sealed_until = ?, sealed_last = ? WHERE id = ?", sealed)
                if wal_before is not None:
                    db.execute("DELETE FROM wal WHERE seq < ?", (wal_before,))
                if flushed_through is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('flushed_through', ?)", (str(flushed_through),)
                    )
                if specs is not None:
                    text = json.dumps([spec.__dict__ for spec in specs])
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('specs', ?)", (text,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite has rolled back itself on a full disk
                    db.execute("ROLLBACK")
                raise
            return ids

    def remember(self, cid: int, block: np.ndarray) -> None:
        """Keep a chunk just written in the cache, decoded: the newest history is the most read."""
        self.cache.put(cid, block)

    # ----- reading
    def samples(self, sid: int, start: float, end: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return the raw chunks of a series that overlap [start, end], by their start."""
        return [(b[0], b[1]) for b in self._read(sid, 0.0, start, end, decode_samples)]

    def rollups(self, sid: int, step: float, start: float, end: float) -> list[Rollup]:
        """Return the rollup fragments of one tier whose buckets overlap [start, end], by their start."""
        blocks = self._read(sid, step, start, end, lambda b: decode_rollup(b, step))
        return [Rollup.from_block(b) for b in blocks]

    def _read(self, sid, step, start, end, decode) -> list[np.ndarray]:
        """Return the decoded blocks of the chunks that overlap [start, end], from the cache when there."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, start FROM chunks WHERE series = ? AND step = ? AND end >= ? AND start <= ?",
                (sid, step, start, end),
            ).fetchall()
            rows.sort(key=lambda r: (r[1], r[0]))
            out, missing = [], []
            for cid, _ in rows:
                found = self.cache.get(cid)
                out.append(found)
                if found is None:
                    missing.append(cid)
            if not missing:
                return out
            blobs = dict(
                self.db.execute(
                    f"SELECT id, CAST(data AS BLOB) FROM chunks WHERE id IN ({','.join('?' * len(missing))})",
                    missing,
                ).fetchall()
            )
            for i, (cid, _) in enumerate(rows):
                if out[i] is not None:
                    continue
                try:
                    out[i] = decode(blobs[cid])
                except (ChunkDamaged, KeyError) as exc:
                    self._set_aside(cid, str(exc))
                    continue
                self.cache.put(cid, out[i])
            return [o for o in out if o is not None]

    def _set_aside(self, cid: int, reason: str) -> None:
        """Move a chunk that does not decode to the damaged table; the rest of the series is served."""
        row = self.db.execute("SELECT series, step, start, end FROM chunks WHERE id = ?", (cid,)).fetchone()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT INTO damaged SELECT series, step, start, end, data, ?, ? FROM chunks WHERE id = ?",
                (reason, time.time(), cid),
            )
            self.db.execute("DELETE FROM chunks WHERE id = ?", (cid,))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        if row is not None:
            sid, step, start, end = row
            tier = "raw samples" if step == 0 else f"{step:g} s rollups"
            self._problem(
                f"a chunk of series {sid} ({tier}, {_when(start)} to {_when(end)}) is damaged "
                f"({reason}); set aside in the damaged table, the rest is served"
            )

    # ----- upkeep
    def rows_of(self, sid: int, step: float) -> list[tuple[int, float, int]]:
        """Return (chunk id, start, samples) of every chunk a series has on one tier, by start."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, start, samples FROM chunks WHERE series = ? AND step = ?", (sid, step)
            ).fetchall()
        return sorted(rows, key=lambda r: (r[1], r[0]))

    def compact(self, sid: int, step: float, groups: list[list[int]]) -> None:
        """Replace each group of chunks of one tier (ids, in order) with one merged chunk."""
        decode = decode_samples if step == 0 else (lambda blob: decode_rollup(blob, step))
        with self._lock:
            for ids in groups:
                blocks = []
                for cid in ids:
                    cached = self.cache.get(cid)
                    if cached is None:
                        blob = self.db.execute(
                            "SELECT CAST(data AS BLOB) FROM chunks WHERE id = ?", (cid,)
                        ).fetchone()
                        try:
                            cached = decode(blob[0])
                        except (ChunkDamaged, TypeError) as exc:
                            self._set_aside(cid, str(exc))
                            continue
                    blocks.append(cached)
                if not blocks:
                    continue
                if step == 0:
                    merged = np.concatenate(blocks, axis=1)
                    merged = merged[:, np.argsort(merged[0], kind="stable")]  # late history among the rest
                    row = raw_row(sid, merged[0], merged[1])
                else:
                    rollup = merge_rollups([Rollup.from_block(b) for b in blocks])
                    merged, row = rollup.block(), rollup_row(sid, step, rollup)
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    self.db.execute(f"DELETE FROM chunks WHERE id IN ({','.join('?' * len(ids))})", ids)
                    new = self.db.execute(INSERT_CHUNK, row).lastrowid
                    self.db.execute("COMMIT")
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
                self.cache.drop(ids)
                self.cache.put(new, merged)

    def expire(self, cutoffs: dict[float, float]) -> int:
        """Delete chunks that ended before their tier's cutoff (step -> time), and tiers no longer kept."""
        marks = ",".join("?" * len(cutoffs))
        with self._lock:
            gone = [
                cid
                for step, cutoff in cutoffs.items()
                for (cid,) in self.db.execute(
                    "SELECT id FROM chunks WHERE step = ? AND end < ?", (step, cutoff)
                ).fetchall()
            ]
            gone += [
                cid
                for (cid,) in self.db.execute(
                    f"SELECT id FROM chunks WHERE step NOT IN ({marks})", list(cutoffs)
                ).fetchall()
            ]
            self._delete(gone)
            return len(gone)

    def forget(self, sids: list[int]) -> None:
        """Remove series and everything they stored."""
        if not sids:
            return
        marks = ",".join("?" * len(sids))
        with self._lock:
            gone = [
                cid for (cid,) in self.db.execute(f"SELECT id FROM chunks WHERE series IN ({marks})", sids)
            ]
            self._delete(gone, f"DELETE FROM series WHERE id IN ({marks})", sids)

    def _delete(self, ids: list[int], also: str | None = None, args: list | None = None) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                self.db.execute(f"DELETE FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
            if also:
                self.db.execute(also, args or [])
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.cache.drop(ids)

    def disk_bytes(self) -> int:
        """Return the bytes the archive's files take."""
        if self.directory is None:
            return 0
        return sum(p.stat().st_size for p in self.directory.glob(FILE + "*"))

    def chunk_bytes(self, step: float | None = None) -> tuple[int, int]:
        """Return (bytes of chunk data, samples or buckets) of one tier, or of all."""
        where, args = ("WHERE step = ?", (step,)) if step is not None else ("", ())
        with self._lock:
            size, count = self.db.execute(
                f"SELECT coalesce(sum(length(data)), 0), coalesce(sum(samples), 0) FROM chunks {where}", args
            ).fetchone()
        return int(size), int(count)

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _damage(path: Path) -> str | None:
    """Return what SQLite's quick check finds wrong with a store file (None: nothing, or no file yet)."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = [row[0] for row in db.execute("PRAGMA quick_check(5)").fetchall()]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if found == ["ok"]:
        return None
    text = "; ".join(line.strip() for row in found for line in row.splitlines() if "***" not in line)
    return text if len(text) <= 300 else text[:300] + "…"


def raw_row(sid: int, ts: np.ndarray, val: np.ndarray) -> tuple:
    """Return the chunks table row of one series' raw samples (time order)."""
    return (sid, 0.0, float(ts[0]), float(ts[-1]), len(ts), encode_samples(ts, val))


def rollup_row(sid: int, step: float, r: Rollup) -> tuple:
    """Return the chunks table row of one series' rollup buckets of one step."""
    return (
        sid,
        step,
        float(r.start[0]),
        float(r.start[-1] + step),
        int(r.count.sum()),
        encode_rollup(r, step),
    )


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"
