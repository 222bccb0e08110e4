"""API keys: made by an admin, shown once, kept as SHA-256 digests, scoped, expiring, revocable."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from dashboard_app.access.identity import Identity
from dashboard_app.state.database import api_keys, import_once, memory_database
from tsdb.metrics import ACCESS_LEVELS
from tsdb.persistence import load_json


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
    """API keys by id in the state database, found by the digest of the token a request carries.
    ``file`` is the api_keys.json of earlier versions, imported once."""

    def __init__(
        self, engine: Engine | None, clock: Callable[[], float] = time.time, file: Path | None = None
    ):
        self.engine = engine if engine is not None else memory_database()
        self.clock = clock
        self.problems: list[str] = []
        self._used: dict[str, float] = {}  # when each key's last use was written (at most once a minute)
        if file is not None:
            self._import(file)

    @property
    def keys(self) -> dict[str, ApiKey]:
        """Every key by id, as the database has them now."""
        with self.engine.connect() as db:
            return {
                row.id: _row_key(row) for row in db.execute(select(api_keys).order_by(api_keys.c.created))
            }

    def create(self, name: str, scopes: list[str], expires_in: float | None, by: str) -> tuple[ApiKey, str]:
        """Make a key; return it and its token, which is never shown again."""
        token = "pb_" + secrets.token_urlsafe(32)
        key = ApiKey(secrets.token_hex(8), name, scopes, _digest(token), self.clock(), None, False, None, by)
        if expires_in:
            key.expires = key.created + expires_in
        with self.engine.begin() as db:  # stored first: a key that failed to save never works
            db.execute(insert(api_keys).values(**_key_row(key)))
        return key, token

    def revoke(self, key_id: str) -> bool:
        """Revoke a key (on every replica at once); False when there is no active key of that id."""
        with self.engine.begin() as db:
            done = db.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked.is_(False))
                .values(revoked=True)
            ).rowcount
        return done == 1

    def identify(self, token: str) -> Identity | None:
        """Return the identity of a valid key, or None (unknown, revoked or expired)."""
        digest = _digest(token)  # a digest lookup: the token itself is never compared
        with self.engine.connect() as db:
            row = db.execute(select(api_keys).where(api_keys.c.digest == digest)).first()
        now = self.clock()
        if row is None or row.revoked or (row.expires is not None and row.expires <= now):
            return None
        if now - self._used.get(row.id, 0.0) >= USED_EVERY:
            self._used[row.id] = now
            with self.engine.begin() as db:
                db.execute(update(api_keys).where(api_keys.c.id == row.id).values(last_used=now))
        scopes = tuple(json.loads(row.scopes))
        role = "admin" if "admin" in scopes else "viewer"
        return Identity(f"key:{row.name}", role, ACCESS_LEVELS, scopes, "key")

    def _import(self, file: Path) -> None:
        """Bring the api_keys.json of earlier versions into the database, once."""
        if not file.is_file():
            return
        saved = load_json(file, lambda items: {k["id"]: ApiKey(**k) for k in items}, self.problems) or {}
        with self.engine.begin() as db:
            if not import_once(db, IMPORTED, file):
                return
            for key in saved.values():
                if not db.execute(select(api_keys.c.id).where(api_keys.c.id == key.id)).first():
                    db.execute(insert(api_keys).values(**_key_row(key)))


IMPORTED = "api keys file imported"
USED_EVERY = 60.0  # seconds between writes of a key's last use: a busy key is not a write per request


def _key_row(key: ApiKey) -> dict:
    row = asdict(key)
    row["scopes"] = json.dumps(list(key.scopes))
    return row


def _row_key(row) -> ApiKey:
    data = dict(row._mapping)
    data["scopes"] = list(json.loads(data["scopes"]))
    return ApiKey(**data)
