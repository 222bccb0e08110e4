"""Callbacks of the admin page: make a key (shown once), revoke one, list them."""

from __future__ import annotations

from dash import ALL, Dash, Input, Output, State, ctx

from dashboard_app.access.identity import SCOPES
from dashboard_app.access.permissions import ADMIN, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.runtime import Runtime
from layouts import ids
from layouts.admin_view import key_table, new_key


def register(app: Dash, runtime: Runtime, permissions: Permissions) -> None:
    """Attach the admin page's callbacks (admins only)."""

    @permissions.callback(
        app,
        ADMIN,
        Output(ids.ADMIN_KEYS, "children"),
        Output(ids.ADMIN_NEW_KEY, "children"),
        Input(ids.URL, "pathname"),
        Input(ids.ADMIN_KEY_CREATE, "n_clicks"),
        Input({"type": ids.ADMIN_KEY_REVOKE, "key": ALL}, "n_clicks"),
        State(ids.ADMIN_KEY_NAME, "value"),
        State(ids.ADMIN_KEY_SCOPES, "value"),
        State(ids.ADMIN_KEY_DAYS, "value"),
    )
    def keys(_path, created, _revoked, name, scopes, days):
        token = error = None
        trigger = ctx.triggered_id
        who = reads().identity.name
        name = name if isinstance(name, str) else ""
        scopes = scopes if isinstance(scopes, list) else []
        if trigger == ids.ADMIN_KEY_CREATE and created:
            scopes = [s for s in scopes if s in SCOPES]
            if not name.strip():
                error = "Say what the key is for."
            elif not scopes:
                error = "Pick at least one scope."
            else:
                try:
                    expires = float(days) * 86400 if days else None
                except (TypeError, ValueError):
                    expires = None
                if expires is not None and not 0 < expires < 1e11:
                    expires = None
                key, token = runtime.keys.create(name.strip()[:100], sorted(scopes), expires, who)
                runtime.audit.write(who, "CREATE KEY", key.id, "admin page", 201)
        elif (
            isinstance(trigger, dict) and trigger.get("type") == ids.ADMIN_KEY_REVOKE and any(_revoked or [])
        ):
            if runtime.keys.revoke(trigger["key"]):
                runtime.audit.write(who, "REVOKE KEY", trigger["key"], "admin page", 200)
        return key_table([k.public() for k in runtime.keys.keys.values()]), new_key(token, error)
