"""Live dashboard connections: a cap per environment, and idle ones cleaned up."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

IDLE_TIMEOUT = 120.0  # a connection that shows no sign of life this long is dropped


class PoolFull(RuntimeError):
    """No room for another live connection."""


@dataclass
class Connection:
    id: str
    dashboard: str
    kind: str  # "websocket" or "rest"
    opened: float
    last_seen: float
    owner: str = ""  # the user or key that opened it: only they (or an admin) may close it


class ConnectionPool:
    """Hand out at most ``cap`` live connections at once."""

    def __init__(
        self,
        cap: int,
        clock: Callable[[], float] = time.time,
        idle_timeout: float = IDLE_TIMEOUT,
        per_owner: int | None = None,
    ):
        self.cap = cap
        self.per_owner = per_owner or cap
        self.clock = clock
        self.idle_timeout = idle_timeout
        self._open: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def open(self, dashboard: str, kind: str, owner: str = "") -> Connection:
        """Open a connection; raise PoolFull when the cap (or the owner's share of it) is reached."""
        now = self.clock()
        with self._lock:
            self._sweep(now)
            if len(self._open) >= self.cap:
                raise PoolFull(f"{self.cap} live connections are open, the most this Pulseboard allows")
            if sum(1 for c in self._open.values() if c.owner == owner) >= self.per_owner:
                raise PoolFull(
                    f"{owner or 'this caller'} has {self.per_owner} live connections open, the most one may"
                )
            conn = Connection(uuid.uuid4().hex, dashboard, kind, now, now, owner)
            self._open[conn.id] = conn
            return conn

    def touch(self, connection_id: str) -> bool:
        """Note a sign of life; False when the connection is gone."""
        with self._lock:
            conn = self._open.get(connection_id)
            if conn is None:
                return False
            conn.last_seen = self.clock()
            return True

    def close(self, connection_id: str, owner: str | None = None) -> bool:
        """Close a connection (only one of ``owner``'s, when given); False when there was none."""
        with self._lock:
            conn = self._open.get(connection_id)
            if conn is None or (owner is not None and conn.owner != owner):
                return False
            del self._open[connection_id]
            return True

    def alive(self, connection_id: str) -> bool:
        """Return whether a connection is still open (not closed, not idle too long)."""
        with self._lock:
            self._sweep(self.clock())
            return connection_id in self._open

    def _sweep(self, now: float) -> None:
        for cid in [c.id for c in self._open.values() if now - c.last_seen > self.idle_timeout]:
            del self._open[cid]

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self.clock())
            return len(self._open)

    def snapshot(self) -> list[dict]:
        """Return every open connection, as the status view shows it."""
        with self._lock:
            self._sweep(self.clock())
            return [asdict(c) for c in self._open.values()]
