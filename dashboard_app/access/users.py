"""Users with roles, access levels and hashed passwords, kept in a file that only the owner may read."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from dashboard_app.access.identity import ROLES, Identity
from dashboard_app.access.secrets import MIN_PASSWORD, weak_password
from tsdb.metrics import ACCESS_LEVELS
from tsdb.persistence import load_json, write_atomically

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
    """Users kept in a file; a login check costs the same whether the name exists or not."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self.problems: list[str] = []
        saved = load_json(path, lambda items: {u["name"]: _user(u) for u in items}, self.problems)
        self.users: dict[str, User] = saved or {}
        self._decoy = generate_password_hash("not a password anyone has")  # same method, same cost
        self._hashing = threading.Semaphore(1)

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
            known = self.users.get(name)
            if known is not None and check_password_hash(known.password_hash, password):
                if (known.role, known.access) == (role, levels):
                    return  # unchanged (the admin's password is set again at every start)
                password_hash, generation = known.password_hash, known.generation + 1
            else:
                password_hash = generate_password_hash(password)
                generation = known.generation + 1 if known is not None else 0
            user = User(name, role, levels, password_hash, generation)
            self._save({**self.users, name: user})  # on disk first: a failed save changes nothing
            self.users[name] = user

    def check(self, name: str, password: str) -> Identity | None:
        """Return the identity of a good login, or None; unknown names cost as much as known ones.

        One password is hashed at a time, whatever the number of addresses logging in: the hashing
        takes at most one core, the pages keep the rest. Raise Busy when the wait passes HASH_WAIT.
        """
        user = self.users.get(name)
        if not self._hashing.acquire(timeout=HASH_WAIT):
            raise Busy("many logins are being checked; try again in a few seconds")
        try:
            good = check_password_hash(user.password_hash if user else self._decoy, password)
        finally:
            self._hashing.release()
        return self._identity(user) if good and user is not None else None

    def identity(self, name: str, generation: int | None = None) -> Identity | None:
        """Return a user's identity; None for an unknown user or a session of an ended generation."""
        user = self.users.get(name)
        if user is None or (generation is not None and generation != user.generation):
            return None
        return self._identity(user)

    def generation(self, name: str) -> int:
        user = self.users.get(name)
        return user.generation if user else -1

    def end_sessions(self, name: str) -> None:
        """End every open session of a user (logout)."""
        with self._lock:
            user = self.users.get(name)
            if user is not None:
                ended = replace(user, generation=user.generation + 1)
                self._save({**self.users, name: ended})
                self.users[name] = ended

    @staticmethod
    def _identity(user: User) -> Identity:
        return Identity(user.name, user.role, tuple(user.access))

    def _save(self, users: dict[str, User]) -> None:
        """Write the users as they are to be; raise OSError, changing nothing, when that fails."""
        if self.path:
            write_atomically(self.path, json.dumps([asdict(u) for u in users.values()], indent=1), True)
