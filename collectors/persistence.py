"""Keep the store on disk with diskcache: periodic snapshots plus small chunks of new samples."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import diskcache

from collectors.store import Store

log = logging.getLogger(__name__)

SNAPSHOT = "snapshot"
CHUNK = "chunk:"


class StoreArchive:
    """Save a store to a directory and load it back after a restart.

    Every ``flush`` writes the samples appended since the previous one as a chunk; every
    ``snapshot_every`` flushes a full snapshot replaces the chunks, so start-up reads one
    snapshot and a few chunks whatever the uptime.
    """

    def __init__(self, directory: str | Path, snapshot_every: int = 60):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.problems: list[str] = []  # what could not be read back, for the status view
        try:
            self.cache = self._open()
        except sqlite3.DatabaseError as exc:
            # An unreadable index: keep it aside for inspection and start afresh rather than crash-loop.
            aside = self.directory.with_name(f"{self.directory.name}.corrupt-{int(time.time())}")
            self.directory.rename(aside)
            self.directory.mkdir(parents=True)
            self._problem(f"{self.directory}: unreadable ({exc}); moved to {aside}")
            self.cache = self._open()
        self.snapshot_every = max(1, snapshot_every)
        self._flushes = 0
        self._seq = max((int(k[len(CHUNK) :]) for k in self._chunk_keys()), default=0)
        self._lock = threading.Lock()

    def _open(self) -> diskcache.Cache:
        return diskcache.Cache(str(self.directory), eviction_policy="none", size_limit=2**40)

    def _problem(self, message: str) -> None:
        log.error("persistence: %s", message)
        self.problems.append(message)

    def _chunk_keys(self) -> list[str]:
        return sorted(k for k in self.cache.iterkeys() if isinstance(k, str) and k.startswith(CHUNK))

    def load(self, store: Store) -> int:
        """Fill an empty store from disk, keeping whatever is readable; return the samples replayed."""
        try:
            state = self.cache.get(SNAPSHOT)
            if state is not None:
                store.import_state(state)
        except Exception as exc:  # a damaged snapshot: go on with the chunks after it
            self._problem(f"snapshot unreadable ({type(exc).__name__}: {exc}); kept the chunks")
        replayed = 0
        for key in self._chunk_keys():
            try:
                chunk = self.cache.get(key)
                if chunk is not None:
                    replayed += store.replay(*chunk)
            except Exception as exc:
                self._problem(f"{key} unreadable ({type(exc).__name__}: {exc}); skipped")
        log.info("loaded %d series from %s", store.series_count, self.directory)
        return replayed

    def commit(self, store: Store) -> None:
        """Write what the store gained, now: a push calls this before it answers, so a kill -9 keeps it."""
        with self._lock:
            self._write_pending(store)

    def flush(self, store: Store) -> None:
        """Write what the store gained since the last flush (a snapshot every ``snapshot_every``)."""
        with self._lock:
            self._flushes += 1
            if self._flushes % self.snapshot_every == 0:
                self._snapshot(store)
            else:
                self._write_pending(store)

    def _write_pending(self, store: Store) -> None:
        series, sid, ts, val = store.take_pending()
        if len(sid) == 0:
            return
        self._seq += 1
        # diskcache commits through SQLite in WAL mode: once set() returns, a process crash keeps it.
        self.cache.set(f"{CHUNK}{self._seq:012d}", (series, sid, ts, val))

    def snapshot(self, store: Store) -> None:
        """Write the whole store and drop the chunks it covers."""
        with self._lock:
            self._snapshot(store)

    def _snapshot(self, store: Store) -> None:
        stale = self._chunk_keys()
        self.cache.set(SNAPSHOT, store.export_state())
        for key in stale:
            self.cache.delete(key)

    def close(self) -> None:
        self.cache.close()
