"""The admin page: API keys (made, shown once, revoked)."""

from __future__ import annotations

from dash import dcc, html

from layouts import ids
from layouts.components import page_head
from layouts.units import format_time

SCOPE_OPTIONS = [
    {"label": " ingest (push metrics)", "value": "ingest"},
    {"label": " read (queries, /metrics)", "value": "read"},
    {"label": " admin", "value": "admin"},
]


def admin_page() -> html.Div:
    """Return the admin page; callbacks fill the key list."""
    return html.Div(
        className="dashboard admin-page",
        children=[
            page_head("API keys", "Keys for applications and scrapers."),
            html.Div(
                className="key-form",
                children=[
                    dcc.Input(
                        id=ids.ADMIN_KEY_NAME,
                        placeholder="What the key is for, e.g. shop-backend",
                        debounce=False,
                    ),
                    dcc.Checklist(
                        id=ids.ADMIN_KEY_SCOPES, options=SCOPE_OPTIONS, value=["ingest"], inline=True
                    ),
                    dcc.Input(
                        id=ids.ADMIN_KEY_DAYS, type="number", min=1, placeholder="Expires after (days)"
                    ),
                    html.Button("Create key", id=ids.ADMIN_KEY_CREATE, className="theme-toggle key-create"),
                ],
            ),
            html.Div(id=ids.ADMIN_NEW_KEY, className="new-key"),
            html.Div(id=ids.ADMIN_KEYS, className="alerts-body"),
        ],
    )


def new_key(token: str | None, error: str | None) -> list:
    """Return the box that shows a new key once, or why it was not made."""
    if error:
        return [html.P(error, className="rule-error")]
    if not token:
        return []
    return [
        html.P("Copy the key now: it is not shown again.", className="muted"),
        html.Code(token, id=ids.ADMIN_NEW_KEY_TOKEN, className="key-token"),
    ]


def key_table(keys: list[dict]) -> html.Table | html.P:
    """Return the keys, newest first, each with a revoke button while it is active."""
    if not keys:
        return html.P("No keys yet.", className="muted")
    rows = []
    for k in sorted(keys, key=lambda k: k["created"], reverse=True):
        active = not k["revoked"]
        rows.append(
            html.Tr(
                [
                    html.Td(k["name"]),
                    html.Td(", ".join(k["scopes"])),
                    html.Td(format_time(k["created"])),
                    html.Td(format_time(k["expires"])),
                    html.Td(format_time(k["last_used"])),
                    html.Td(
                        html.Button(
                            "Revoke",
                            id={"type": ids.ADMIN_KEY_REVOKE, "key": k["id"]},
                            className="theme-toggle",
                        )
                        if active
                        else "revoked"
                    ),
                ]
            )
        )
    header = html.Tr([html.Th(h) for h in ("name", "scopes", "created", "expires", "last used", "")])
    return html.Table([html.Thead(header), html.Tbody(rows)], className="alert-table")
