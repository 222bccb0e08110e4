"""The audit log: one JSON line per write, in files that rotate at a size so the log never fills a disk."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

MAX_BYTES = 10 * 2**20
KEEP = 5  # rotated files kept beside the current one: audit.log.1 (newest) .. audit.log.5


class AuditLog:
    """Append who, when, what, from where and the answer; rotate at ``max_bytes``."""

    def __init__(
        self,
        path: Path | None,
        clock: Callable[[], float] = time.time,
        max_bytes: int = MAX_BYTES,
        keep: int = KEEP,
    ):
        self.path = path
        self.clock = clock
        self.max_bytes = max_bytes
        self.keep = keep
        self._lock = threading.Lock()

    def write(
        self, who: str, action: str, target: str, source: str, status: int, detail: str | None = None
    ) -> None:
        """Append one entry (``detail``: why, when the writer said, as a silence's reason)."""
        if self.path is None:
            return
        entry = {
            "time": self.clock(),
            "who": who,
            "action": action,
            "target": target,
            "from": source,
            "status": status,
        }
        if detail:
            entry["detail"] = detail
        line = (json.dumps(entry) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as f:
                f.write(line)

    def _rotate(self) -> None:
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def read(self, limit: int = 1000) -> list[dict]:
        """Return the newest entries first, at most ``limit``."""
        if self.path is None or not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()[-limit:]
        out = []
        for line in reversed(lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
        return out
