"""API keys: made by an admin, shown once, kept as SHA-256 digests, scoped, expiring, revocable."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dashboard_app.access.identity import Identity
from tsdb.metrics import ACCESS_LEVELS
from tsdb.persistence import load_json, write_atomically


@dataclass
class ApiKey:
    id: str
    name: str
    scopes: list[str]
    digest: str
    created: float
    expires: float | None = None
    revoked: bool = False
    last_used: float | None = None
    created_by: str = ""

    def public(self) -> dict:
        out = asdict(self)
        out.pop("digest")
        return out


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # tokens are 256-bit random: a fast hash is enough


class Keys:
    """API keys by id, found by the digest of the token a request carries."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time):
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self.problems: list[str] = []
        saved = load_json(path, lambda items: {k["id"]: ApiKey(**k) for k in items}, self.problems)
        self.keys: dict[str, ApiKey] = saved or {}

    def create(self, name: str, scopes: list[str], expires_in: float | None, by: str) -> tuple[ApiKey, str]:
        """Make a key; return it and its token, which is never shown again."""
        token = "pb_" + secrets.token_urlsafe(32)
        key = ApiKey(secrets.token_hex(8), name, scopes, _digest(token), self.clock(), None, False, None, by)
        if expires_in:
            key.expires = key.created + expires_in
        with self._lock:
            self._save({**self.keys, key.id: key})  # on disk first: a key that failed to save never works
            self.keys[key.id] = key
        return key, token

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when there is no active key of that id."""
        with self._lock:
            key = self.keys.get(key_id)
            if key is None or key.revoked:
                return False
            ended = replace(key, revoked=True)
            self._save({**self.keys, key_id: ended})
            self.keys[key_id] = ended
            return True

    def identify(self, token: str) -> Identity | None:
        """Return the identity of a valid key, or None (unknown, revoked or expired)."""
        digest = _digest(token)  # a digest lookup: the token itself is never compared
        key = next((k for k in self.keys.values() if k.digest == digest), None)
        now = self.clock()
        if key is None or key.revoked or (key.expires is not None and key.expires <= now):
            return None
        key.last_used = now
        role = "admin" if "admin" in key.scopes else "viewer"
        return Identity(f"key:{key.name}", role, ACCESS_LEVELS, tuple(key.scopes), "key")

    def _save(self, keys: dict[str, ApiKey]) -> None:
        """Write the keys as they are to be; raise OSError, changing nothing, when that fails."""
        if self.path:
            write_atomically(self.path, json.dumps([asdict(k) for k in keys.values()], indent=1), True)
