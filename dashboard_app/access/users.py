"""Users with roles, access levels and hashed passwords, kept in the state database."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard_app.access.identity import ROLES, Identity
from dashboard_app.access.secrets import MIN_PASSWORD, weak_password
from dashboard_app.state.database import import_once, memory_database
from dashboard_app.state.database import users as users_table
from tsdb.metrics import ACCESS_LEVELS
from tsdb.persistence import load_json

HASH_WAIT = 2.0  # seconds a login waits for the password hashing before it is told to come back


class Busy(RuntimeError):
    """Logins arrive faster than passwords can be checked; the caller should come back shortly."""


@dataclass
class User:
    name: str
    role: str
    access: list[str]
    password_hash: str
    generation: int = 0  # bumped on logout and password change: sessions of an older one are over


def _user(item: dict) -> User:
    known = {k: item[k] for k in ("name", "role", "access", "password_hash", "generation") if k in item}
    return User(**known)


class Users:
    """Users kept in the state database (every replica reads the same); a login check costs the same
    whether the name exists or not. ``file`` is the users.json of earlier versions, imported once."""

    def __init__(self, engine: Engine | None, file: Path | None = None):
        self.engine = engine if engine is not None else memory_database()
        self._lock = threading.Lock()
        self.problems: list[str] = []
        self._decoy = generate_password_hash("not a password anyone has")  # same method, same cost
        self._hashing = threading.Semaphore(1)
        if file is not None:
            self._import(file)

    @property
    def users(self) -> dict[str, User]:
        """Every user by name, as the database has them now."""
        with self.engine.connect() as db:
            return {row.name: _row_user(row) for row in db.execute(select(users_table))}

    def _get(self, name: str) -> User | None:
        with self.engine.connect() as db:
            row = db.execute(select(users_table).where(users_table.c.name == name)).first()
        return _row_user(row) if row is not None else None

    def set(self, name: str, password: str, role: str, access: list[str] | None = None) -> None:
        """Create or change a user; a new password ends the user's open sessions."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if weak_password(password):
            raise ValueError(f"a password has {MIN_PASSWORD}+ characters and is not a well-known one")
        levels = list(access if access is not None else ACCESS_LEVELS)
        bad = [a for a in levels if a not in ACCESS_LEVELS]
        if bad:
            raise ValueError(f"access levels are {', '.join(ACCESS_LEVELS)}, not {', '.join(bad)}")
        with self._lock:
            for _ in range(2):  # a second time when another replica made the user at the same moment
                known = self._get(name)
                if known is not None and check_password_hash(known.password_hash, password):
                    if (known.role, known.access) == (role, levels):
                        return  # unchanged (the admin's password is set again at every start)
                    password_hash = known.password_hash
                else:
                    password_hash = generate_password_hash(password)
                values = {"role": role, "access": json.dumps(levels), "password_hash": password_hash}
                try:
                    with self.engine.begin() as db:  # written before it takes effect
                        if known is None:
                            db.execute(insert(users_table).values(name=name, generation=0, **values))
                        else:
                            db.execute(
                                update(users_table)
                                .where(users_table.c.name == name)
                                .values(generation=users_table.c.generation + 1, **values)
                            )
                    return
                except IntegrityError:
                    continue  # made by another replica a moment ago: look again

    def check(self, name: str, password: str) -> Identity | None:
        """Return the identity of a good login, or None; unknown names cost as much as known ones.

        One password is hashed at a time, whatever the number of addresses logging in: the hashing
        takes at most one core, the pages keep the rest. Raise Busy when the wait passes HASH_WAIT.
        """
        user = self._get(name)
        if not self._hashing.acquire(timeout=HASH_WAIT):
            raise Busy("many logins are being checked; try again in a few seconds")
        try:
            good = check_password_hash(user.password_hash if user else self._decoy, password)
        finally:
            self._hashing.release()
        return self._identity(user) if good and user is not None else None

    def identity(self, name: str, generation: int | None = None) -> Identity | None:
        """Return a user's identity; None for an unknown user or a session of an ended generation."""
        user = self._get(name)
        if user is None or (generation is not None and generation != user.generation):
            return None
        return self._identity(user)

    def generation(self, name: str) -> int:
        user = self._get(name)
        return user.generation if user else -1

    def end_sessions(self, name: str) -> None:
        """End every open session of a user (logout), on every replica at once."""
        with self.engine.begin() as db:
            db.execute(
                update(users_table)
                .where(users_table.c.name == name)
                .values(generation=users_table.c.generation + 1)
            )

    @staticmethod
    def _identity(user: User) -> Identity:
        return Identity(user.name, user.role, tuple(user.access))

    def _import(self, file: Path) -> None:
        """Bring the users.json of earlier versions into the database, once."""
        if not file.is_file():
            return
        saved = load_json(file, lambda items: {u["name"]: _user(u) for u in items}, self.problems) or {}
        with self.engine.begin() as db:
            if not import_once(db, IMPORTED, file):
                return
            for user in saved.values():
                if db.execute(select(users_table.c.name).where(users_table.c.name == user.name)).first():
                    continue
                db.execute(
                    insert(users_table).values(
                        name=user.name,
                        role=user.role,
                        access=json.dumps(list(user.access)),
                        password_hash=user.password_hash,
                        generation=user.generation,
                    )
                )


IMPORTED = "users file imported"


def _row_user(row) -> User:
    return User(row.name, row.role, list(json.loads(row.access)), row.password_hash, row.generation)
