"""The audit log: one entry per write (who, when, what, from where, the answer), in the state database so
that every replica's writes are in one log; the oldest entries beyond ``keep`` are dropped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select

from dashboard_app.state.database import audit_log, import_once, memory_database

KEEP = 200_000  # entries kept, newest first (about 60 MB)
PRUNE_EVERY = 1000  # writes between two looks for entries beyond KEEP
IMPORTED = "audit log files imported"


class AuditLog:
    """Append who, when, what, from where and the answer; ``files`` is the audit.log of earlier versions
    (with its rotated audit.log.1 .. .5), imported once."""

    def __init__(
        self,
        engine: Engine | None,
        clock: Callable[[], float] = time.time,
        keep: int = KEEP,
        files: Path | None = None,
    ):
        self.engine = engine if engine is not None else memory_database()
        self.clock = clock
        self.keep = keep
        self._writes = 0
        self._lock = threading.Lock()
        if files is not None:
            self._import(files)

    def write(
        self, who: str, action: str, target: str, source: str, status: int, detail: str | None = None
    ) -> None:
        """Append one entry (``detail``: why, when the writer said, as a silence's reason)."""
        entry = {"time": self.clock(), "who": who, "action": action, "target": target, "from": source}
        entry["status"] = status
        if detail:
            entry["detail"] = detail
        with self.engine.begin() as db:
            db.execute(insert(audit_log).values(time=entry["time"], entry=json.dumps(entry)))
        with self._lock:
            self._writes += 1
            prune = self._writes % PRUNE_EVERY == 1 or self.keep < PRUNE_EVERY
        if prune:
            self._prune()

    def _prune(self) -> None:
        with self.engine.begin() as db:
            newest = db.execute(select(func.max(audit_log.c.id))).scalar() or 0
            db.execute(delete(audit_log).where(audit_log.c.id <= newest - self.keep))

    def read(self, limit: int = 1000) -> list[dict]:
        """Return the newest entries first, at most ``limit``."""
        with self.engine.connect() as db:
            rows = db.execute(select(audit_log.c.entry).order_by(audit_log.c.id.desc()).limit(limit)).all()
        return [json.loads(row.entry) for row in rows]

    def _import(self, path: Path) -> None:
        """Bring the audit log files of earlier versions into the database (oldest first), once."""
        files = [path.with_name(f"{path.name}.{n}") for n in range(9, 0, -1)] + [path]
        files = [f for f in files if f.is_file()]
        if not files:
            return
        with self.engine.begin() as db:
            if not import_once(db, IMPORTED, path):
                return
            for file in files:
                for line in file.read_text(errors="replace").splitlines():
                    try:
                        entry = json.loads(line)
                        db.execute(insert(audit_log).values(time=float(entry["time"]), entry=line))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a crash
