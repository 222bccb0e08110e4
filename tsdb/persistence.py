"""Files in the data directory: atomic writes, damaged files set aside, and the store's previous format."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import diskcache
import numpy as np

from tsdb.chunks import Rollup
from tsdb.metrics import Sample

log = logging.getLogger(__name__)

PREVIOUS = "store"  # the directory the previous format (whole-store snapshots in diskcache) used
T = TypeVar("T")


def write_atomically(path: Path, text: str, private: bool = False) -> None:
    """Replace a file's text; a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # A private file (hashes, digests) is created owner-only: it is never readable by others, not even
    # for the moment between writing it and changing its mode.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    if private:
        os.fchmod(fd, 0o600)  # an older tmp file left by a crash keeps its mode otherwise
    with os.fdopen(fd, "w") as f:
        f.write(text)
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


def convert_previous(data_dir: Path, store) -> str | None:
    """Move the history of the previous on-disk format into ``store``, once; say what was done.

    The previous format kept a snapshot of every ring buffer plus the chunks appended after it,
    in a diskcache directory. Its raw samples and rollup buckets go into the new archive as
    they are (the rollups already count the raw samples), the chunks after the snapshot are
    appended, and the old directory is renamed, not deleted, for a person to remove.
    """
    old = Path(data_dir) / PREVIOUS
    if not (old / "cache.db").exists():
        return None
    try:
        cache = diskcache.Cache(str(old), eviction_policy="none", size_limit=2**40)
    except sqlite3.DatabaseError as exc:
        aside = set_aside(old)
        return f"{old}: unreadable ({exc}); moved to {aside}"
    notes = []
    try:
        series = 0
        state = _read(cache, "snapshot", notes)
        if state is not None:
            series = _convert_snapshot(state, store)
        keys = sorted(k for k in cache.iterkeys() if isinstance(k, str) and k.startswith("chunk:"))
        for key in keys:
            chunk = _read(cache, key, notes)
            if chunk is not None:
                names, sid, ts, val = chunk
                store.append(
                    [
                        Sample(name, tuple(tuple(p) for p in labels), float(v), float(t))
                        for (name, labels), v, t in zip(
                            (names[i] for i in sid.tolist()), val.tolist(), ts.tolist()
                        )
                    ]
                )
        store.flush()
    finally:
        cache.close()
    kept = old.with_name(f"{PREVIOUS}.previous-format-{int(time.time())}")
    old.rename(kept)
    log.warning("converted %d series from the previous store format; the old files are in %s", series, kept)
    return "; ".join(notes) or None


def _read(cache: diskcache.Cache, key: str, notes: list[str]):
    try:
        return cache.get(key)
    except Exception as exc:  # a damaged value: convert the rest
        notes.append(f"previous format: {key} unreadable ({type(exc).__name__}: {exc}); skipped")
        return None


def _convert_snapshot(state: dict, store) -> int:
    for spec in state.get("specs", ()):
        store.specs.remember(spec)
    empty = np.iinfo(np.int64).min
    for i, (name, labels) in enumerate(state["series"]):
        ts, val = state["raw_ts"][i], state["raw_val"][i]
        present = ~np.isnan(ts)
        rollups = {}
        for saved in state.get("rollups", ()):
            step = saved["tier"].step
            row = saved["bucket"][i]
            cols = np.flatnonzero(row != empty)
            cols = cols[np.argsort(row[cols], kind="stable")]
            fields = [saved.get(f, np.zeros_like(saved["sum"]))[i, cols] for f in Rollup.FIELDS]
            rollups[step] = Rollup(row[cols] * step, fields[0].astype(np.int64), *fields[1:])
        store.restore(name, tuple(tuple(p) for p in labels), ts[present], val[present], rollups)
    return len(state["series"])
