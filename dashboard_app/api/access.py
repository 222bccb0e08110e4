"""Access endpoints for admins: API keys (shown once), users, the audit log."""

from __future__ import annotations

from flask import g

from dashboard_app.access.identity import ROLES, SCOPES
from dashboard_app.access.permissions import ADMIN
from dashboard_app.api.frame import Api, ApiError
from dashboard_app.runtime import Runtime
from tsdb.metrics import ACCESS_LEVELS

KEY_BODY = {
    "type": "object",
    "required": ["name", "scopes"],
    "properties": {
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}},
        "expires_in": {"type": "number", "description": "Seconds until the key stops working"},
    },
}
USER_BODY = {
    "type": "object",
    "required": ["name", "password", "role"],
    "properties": {
        "name": {"type": "string"},
        "password": {"type": "string", "minLength": 12},
        "role": {"type": "string", "enum": list(ROLES)},
        "access": {"type": "array", "items": {"type": "string", "enum": list(ACCESS_LEVELS)}},
    },
}


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the key, user and audit endpoints."""

    @api.route(
        "POST",
        "/keys",
        "Create an API key; the key is in this answer only",
        "access",
        KEY_BODY,
        status=201,
        allow=ADMIN,
        answer={
            "key": {"type": "string"},
            "id": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
        },
    )
    def create_key():
        body = api.json_object()
        name, scopes = body.get("name"), body.get("scopes")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ApiError("name must be a short text saying what the key is for", field="name")
        if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
            raise ApiError(f"scopes must be a list of {', '.join(SCOPES)}", field="scopes")
        expires_in = body.get("expires_in")
        if expires_in is not None and (
            isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0
        ):
            raise ApiError("expires_in must be a positive number of seconds", field="expires_in")
        key, token = runtime.keys.create(name.strip(), sorted(set(scopes)), expires_in, g.identity.name)
        return {
            "key": token,
            **key.public(),
            "note": "store the key now: Pulseboard keeps only its digest",
        }, 201

    @api.route(
        "GET",
        "/keys",
        "API keys (never the keys themselves)",
        "access",
        allow=ADMIN,
        answer={"keys": {"type": "array", "items": {"type": "object"}}},
    )
    def list_keys():
        return {"keys": [k.public() for k in runtime.keys.keys.values()]}

    @api.route(
        "DELETE",
        "/keys/{key_id}",
        "Revoke an API key",
        "access",
        allow=ADMIN,
        answer={"revoked": {"type": "string"}},
    )
    def revoke_key(key_id: str):
        if not runtime.keys.revoke(key_id):
            raise ApiError(f"no active key {key_id!r}", 404, "key_id")
        return {"revoked": key_id}

    @api.route(
        "POST",
        "/users",
        "Create or change a user (a new password ends their open sessions)",
        "access",
        USER_BODY,
        status=201,
        allow=ADMIN,
        answer={"user": {"type": "object"}},
    )
    def set_user():
        body = api.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise ApiError("name must be a user name of at most 64 characters", field="name")
        password, role, access = body.get("password"), body.get("role"), body.get("access")
        if not isinstance(password, str):
            raise ApiError("password must be a text", field="password")
        if access is not None and (
            not isinstance(access, list) or not all(isinstance(a, str) for a in access)
        ):
            raise ApiError(f"access must be a list of {', '.join(ACCESS_LEVELS)}", field="access")
        try:
            runtime.users.set(name.strip(), password, role, access)
        except ValueError as exc:
            field = "role" if "role" in str(exc) else "access" if "access" in str(exc) else "password"
            raise ApiError(str(exc), field=field) from None
        user = runtime.users.users[name.strip()]
        return {"user": {"name": user.name, "role": user.role, "access": user.access}}, 201

    @api.route(
        "GET",
        "/users",
        "Users, their roles and access levels",
        "access",
        allow=ADMIN,
        answer={"users": {"type": "array", "items": {"type": "object"}}},
    )
    def list_users():
        return {
            "users": [
                {"name": u.name, "role": u.role, "access": u.access} for u in runtime.users.users.values()
            ]
        }

    @api.route(
        "GET",
        "/audit",
        "Every write: who, when, what, from where (newest first)",
        "access",
        allow=ADMIN,
        answer={"entries": {"type": "array", "items": {"type": "object"}}},
    )
    def audit():
        return {"entries": runtime.audit.read()}
