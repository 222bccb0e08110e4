"""Keep the store on disk with diskcache: periodic snapshots plus small chunks of new samples."""

from __future__ import annotations

import logging
import threading
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
        self.cache = diskcache.Cache(str(self.directory), eviction_policy="none", size_limit=2**40)
        self.snapshot_every = max(1, snapshot_every)
        self._flushes = 0
        self._seq = max((int(k[len(CHUNK) :]) for k in self._chunk_keys()), default=0)
        self._lock = threading.Lock()

    def _chunk_keys(self) -> list[str]:
        return sorted(k for k in self.cache.iterkeys() if isinstance(k, str) and k.startswith(CHUNK))

    def load(self, store: Store) -> int:
        """Fill an empty store from disk; return the number of samples replayed from chunks."""
        state = self.cache.get(SNAPSHOT)
        if state is not None:
            store.import_state(state)
        replayed = 0
        for key in self._chunk_keys():
            chunk = self.cache.get(key)
            if chunk is not None:
                replayed += store.replay(*chunk)
        log.info("loaded %d series from %s", store.series_count, self.directory)
        return replayed

    def flush(self, store: Store) -> None:
        """Write what the store gained since the last flush."""
        with self._lock:
            self._flushes += 1
            if self._flushes % self.snapshot_every == 0:
                self.snapshot(store)
                return
            series, sid, ts, val = store.take_pending()
            if len(sid) == 0:
                return
            self._seq += 1
            self.cache.set(f"{CHUNK}{self._seq:012d}", (series, sid, ts, val))

    def snapshot(self, store: Store) -> None:
        """Write the whole store and drop the chunks it covers."""
        stale = self._chunk_keys()
        self.cache.set(SNAPSHOT, store.export_state())
        for key in stale:
            self.cache.delete(key)

    def close(self) -> None:
        self.cache.close()
