"""``pulseboard backup DIR``: a consistent copy of a data directory, taken while the server runs.

The metric history (one SQLite file with its write-ahead log of the samples still in the heads) and
the state database (``state.sqlite``: users, keys, dashboards and their versions, rules, silences, alert
state, the audit log) are copied through SQLite's online backup, a snapshot of one moment that holds
everything acknowledged before it began; other files are copied as they are. With ``database.url``
naming PostgreSQL, back that database up with ``pg_dump`` (the state is there, not in the data
directory).
Starting Pulseboard with ``--data-dir DIR`` serves the same history.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from dashboard_app.state.database import STATE_FILE
from tsdb.archive import FILE as STORE_FILE

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")  # the live file's companions: the snapshot holds them


class BackupError(Exception):
    """A backup that cannot be made; the message says why."""


def _copy_store(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one consistent moment of the file
        finally:
            dst.close()
    finally:
        src.close()


def write_backup(data_dir: Path, target: Path) -> list[Path]:
    """Copy ``data_dir`` into ``target`` (which must not exist or be empty); return the files written."""
    if not data_dir.is_dir():
        raise BackupError(f"{data_dir}: no such data directory (give the server's --data-dir)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target}: already exists and is not empty; back up into a new directory")
    if target.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError(f"{target}: is inside the data directory {data_dir}; choose a place outside it")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for path in sorted(data_dir.rglob("*")):
            dest = target / path.relative_to(data_dir)
            if path.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            elif path.name in (STORE_FILE, STATE_FILE):
                _copy_store(path, dest)
                written.append(dest)
            elif path.name.startswith((STORE_FILE, STATE_FILE)) and path.name.endswith(SQLITE_SIDE_FILES):
                continue
            elif path.suffix == ".tmp":
                continue  # a file being written this moment; its previous version is the one in place
            elif path.is_file():
                shutil.copy2(path, dest)
                written.append(dest)
    except (OSError, sqlite3.Error) as exc:
        raise BackupError(f"copying {data_dir} to {target}: {exc}") from None
    return written
