"""Keep the store on disk with diskcache (snapshots plus small chunks), and the small files beside it."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import diskcache

from collectors.store import Store

log = logging.getLogger(__name__)

SNAPSHOT = "snapshot"
CHUNK = "chunk:"
T = TypeVar("T")


def write_atomically(path: Path, text: str, private: bool = False) -> None:
    """Replace a file's text; a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def set_aside(path: Path) -> Path:
    """Rename a damaged file or directory to <name>.corrupt-<time>, for a person to look at."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    path.rename(aside)
    return aside


def load_json(path: Path | None, parse: Callable[[object], T], problems: list[str]) -> T | None:
    """Read a JSON file through ``parse``; a damaged one is set aside and noted, and None returned.

    A start never stops on such a file: what it held is missing, and the status view says so.
    """
    if path is None or not path.exists():
        return None
    try:
        return parse(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        problems.append(f"{path}: unreadable ({exc}); moved to {set_aside(path)}")
        return None


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
            aside = set_aside(self.directory)
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
