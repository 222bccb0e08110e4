"""Who may do what: users with roles and access levels, scoped API keys, secrets, the audit log."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from werkzeug.security import check_password_hash, generate_password_hash

from collectors.persistence import load_json, write_atomically
from layouts.schema import ACCESS_LEVELS
from layouts.validation import ConfigError

ROLES = ("viewer", "analyst", "operator", "admin")
SCOPES = ("ingest", "read", "admin")
WEAK = {"admin", "password", "changeme", "pulseboard", "secret", "123456", "12345678", "letmein"}
MIN_PASSWORD = 12


@dataclass(frozen=True)
class Identity:
    """The person or key behind a request."""

    name: str
    role: str  # viewer, analyst, operator, admin; a key counts as the role its scopes give
    access: tuple[str, ...] = ACCESS_LEVELS
    scopes: tuple[str, ...] = ()
    kind: str = "user"  # user, key or open (development without auth)

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def sees(self, access_level: str) -> bool:
        return self.role == "admin" or access_level in self.access


OPEN = Identity("anonymous", "admin", ACCESS_LEVELS, SCOPES, "open")


@dataclass(frozen=True)
class Secrets:
    secret_key: str
    admin_password: str


def load_secrets(environ: dict[str, str] | None = None) -> Secrets:
    """Read the secret key and admin password from the environment or a secrets file; refuse weak ones."""
    environ = dict(os.environ if environ is None else environ)
    values = {
        "secret_key": environ.get("PULSEBOARD_SECRET_KEY"),
        "admin_password": environ.get("PULSEBOARD_ADMIN_PASSWORD"),
    }
    path = environ.get("PULSEBOARD_SECRETS_FILE")
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the secrets file: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: the secrets file holds secret_key: and admin_password:")
        for key in values:
            values[key] = values[key] or data.get(key)
    missing = [k for k, v in values.items() if not v]
    if missing:
        names = ", ".join(f"PULSEBOARD_{k.upper()}" for k in missing)
        raise ConfigError(
            f"this environment needs {names} (the admin user is 'admin'), or secret_key: and "
            "admin_password: in a file named by PULSEBOARD_SECRETS_FILE"
        )
    if len(values["secret_key"]) < 32:
        raise ConfigError(
            "PULSEBOARD_SECRET_KEY: use at least 32 random characters, for example from "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    password = values["admin_password"]
    if len(password) < MIN_PASSWORD or password.lower() in WEAK:
        raise ConfigError(
            "PULSEBOARD_ADMIN_PASSWORD: a well-known or short password is refused; "
            f"use {MIN_PASSWORD} or more characters"
        )
    return Secrets(values["secret_key"], password)


def _write_json(path: Path, data: object) -> None:
    write_atomically(path, json.dumps(data, indent=1), private=True)  # hashes and digests: owner only


@dataclass
class User:
    name: str
    role: str
    access: list[str]
    password_hash: str
    failures: int = 0
    locked_until: float = 0.0


class Users:
    """Users with hashed passwords, kept in a file; lockout after repeated failed logins."""

    def __init__(
        self,
        path: Path | None,
        clock: Callable[[], float] = time.time,
        attempts: int = 5,
        lockout: float = 900,
    ):
        self.path = path
        self.clock = clock
        self.attempts = attempts
        self.lockout = lockout
        self._lock = threading.Lock()
        self.problems: list[str] = []
        saved = load_json(path, lambda items: {u["name"]: User(**u) for u in items}, self.problems)
        self.users: dict[str, User] = saved or {}

    def set(self, name: str, password: str, role: str, access: list[str] | None = None) -> None:
        """Create or change a user."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD or password.lower() in WEAK:
            raise ValueError(f"a password has {MIN_PASSWORD}+ characters and is not a well-known one")
        levels = list(access if access is not None else ACCESS_LEVELS)
        bad = [a for a in levels if a not in ACCESS_LEVELS]
        if bad:
            raise ValueError(f"access levels are {', '.join(ACCESS_LEVELS)}, not {', '.join(bad)}")
        with self._lock:
            self.users[name] = User(name, role, levels, generate_password_hash(password))
            self._save()

    def check(self, name: str, password: str) -> tuple[Identity | None, str]:
        """Return (identity, "") for a good login, or (None, reason)."""
        now = self.clock()
        with self._lock:
            user = self.users.get(name)
            if user is None:
                check_password_hash(generate_password_hash("x"), password)  # the same time either way
                return None, "wrong user name or password"
            if user.locked_until > now:
                return (
                    None,
                    f"too many failed logins: try again in {int(user.locked_until - now) // 60 + 1} min",
                )
            if not check_password_hash(user.password_hash, password):
                user.failures += 1
                if user.failures >= self.attempts:
                    user.locked_until, user.failures = now + self.lockout, 0
                self._save()
                return None, "wrong user name or password"
            if user.failures:
                user.failures = 0
                self._save()
            return Identity(user.name, user.role, tuple(user.access)), ""

    def identity(self, name: str) -> Identity | None:
        user = self.users.get(name)
        return Identity(user.name, user.role, tuple(user.access)) if user else None

    def _save(self) -> None:
        if self.path:
            _write_json(self.path, [asdict(u) for u in self.users.values()])


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


@dataclass
class Keys:
    """API keys: made by an admin, shown once, kept as SHA-256 digests, scoped, expiring, revocable."""

    path: Path | None
    clock: Callable[[], float] = time.time
    keys: dict[str, ApiKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.problems: list[str] = []
        saved = load_json(self.path, lambda items: {k["id"]: ApiKey(**k) for k in items}, self.problems)
        self.keys = saved or self.keys

    def create(self, name: str, scopes: list[str], expires_in: float | None, by: str) -> tuple[ApiKey, str]:
        token = "pb_" + secrets.token_urlsafe(32)
        key = ApiKey(secrets.token_hex(8), name, scopes, _digest(token), self.clock(), None, False, None, by)
        if expires_in:
            key.expires = key.created + expires_in
        with self._lock:
            self.keys[key.id] = key
            self._save()
        return key, token

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            key = self.keys.get(key_id)
            if key is None or key.revoked:
                return False
            key.revoked = True
            self._save()
            return True

    def identify(self, token: str) -> Identity | None:
        """Return the identity of a valid key, or None (unknown, revoked or expired)."""
        digest = _digest(token)
        now = self.clock()
        for key in self.keys.values():
            if hmac.compare_digest(key.digest, digest):
                if key.revoked or (key.expires is not None and key.expires <= now):
                    return None
                key.last_used = now
                role = "admin" if "admin" in key.scopes else "viewer"
                return Identity(f"key:{key.name}", role, ACCESS_LEVELS, tuple(key.scopes), "key")
        return None

    def _save(self) -> None:
        if self.path:
            _write_json(self.path, [asdict(k) for k in self.keys.values()])


class AuditLog:
    """Append one JSON line per write: who, when, what, from where, and the answer."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time):
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()

    def write(self, who: str, action: str, target: str, source: str, status: int) -> None:
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
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(entry) + "\n")

    def read(self, limit: int = 1000) -> list[dict]:
        if self.path is None or not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()[-limit:]
        return [json.loads(line) for line in reversed(lines) if line.strip()]
