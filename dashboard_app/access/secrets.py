"""The secret key and the admin password: read from the environment or a file, weak ones refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dashboard_app.settings import read_environment
from layouts.validation import ConfigError

WEAK = {"admin", "password", "changeme", "pulseboard", "secret", "123456", "12345678", "letmein"}
MIN_PASSWORD = 12


@dataclass(frozen=True)
class Secrets:
    secret_key: str
    admin_password: str


def weak_password(password: str) -> bool:
    """Return whether a password is too short or well known."""
    return len(password) < MIN_PASSWORD or password.lower() in WEAK


def load_secrets(environ: dict[str, str] | None = None) -> Secrets:
    """Read the secret key and admin password from the environment or a secrets file; refuse weak ones."""
    environ = read_environment(environ)  # PULSEBOARD_ADMIN_PASSWORD_FILE=/run/secrets/... and the like
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
            values[key] = values[key] or (str(data[key]) if data.get(key) is not None else None)
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
    if weak_password(values["admin_password"]):
        raise ConfigError(
            "PULSEBOARD_ADMIN_PASSWORD: a well-known or short password is refused; "
            f"use {MIN_PASSWORD} or more characters"
        )
    return Secrets(values["secret_key"], values["admin_password"])
