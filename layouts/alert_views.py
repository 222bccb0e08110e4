"""Alerts on the pages: the banner every page shows and the Alerts page (rules, active, history)."""

from __future__ import annotations

from dash import dcc, html

from layouts import ids
from layouts.components import page_head
from layouts.units import format_time, format_value


def _ago(seconds: float) -> str:
    return format_value(max(seconds, 0.0), "seconds")


def _since(alert: dict) -> float:
    return alert["fired_at"] or alert["active_at"]


def _labels(alert: dict) -> str:
    """The labels that tell one alert of a rule from another (its name and severity are shown apart)."""
    shown = [f"{k}={v}" for k, v in alert["labels"].items() if k not in ("alertname", "severity")]
    return ", ".join(shown) or "–"


def _value(alert: dict) -> str:
    return "no data" if alert["value"] is None else format_value(alert["value"], alert.get("unit"))


def _state(alert: dict) -> html.Span:
    """The alert's state, as it is for its reader: muted by a silence, without data, or as it fires."""
    if alert.get("silenced_by"):
        return _badge(f"muted ({alert['state']})", "muted")
    if alert.get("no_data"):
        return _badge(f"no data ({alert['state']})", "nodata")
    return _badge(alert["state"], alert["state"])


def banner(alerts: list[dict], now: float) -> list:
    """Return the banner's content: one chip per firing alert, most severe first; nothing when calm."""
    firing = [a for a in alerts if a["state"] == "firing"]
    if not firing:
        return []
    chips = [
        html.A(
            [
                html.Strong(a["name"]),
                html.Span(a["annotations"].get("summary") or f"value {_value(a)}", className="alert-text"),
                html.Span(f"for {_ago(now - _since(a))}", className="alert-since"),
            ],
            href="/alerts",
            className=f"alert-chip severity-{a['severity']}",
            title=f"{a['severity']}: firing since {format_time(a['fired_at'])}; value {_value(a)}",
        )
        for a in firing[:6]
    ]
    more = len(firing) - len(chips)
    if more > 0:
        chips.append(html.A(f"+{more} more", href="/alerts", className="alert-more"))
    return [html.Span(f"{len(firing)} firing", className="alert-count"), *chips]


def _table(header: list[str], rows: list[list], empty: str) -> html.Table | html.P:
    if not rows:
        return html.P(empty, className="muted")
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in header])),
            html.Tbody([html.Tr([html.Td(c) for c in r]) for r in rows]),
        ],
        className="alert-table",
    )


def _badge(text: str, kind: str) -> html.Span:
    return html.Span(text, className=f"state state-{kind}")


SILENCE_SPANS = [("30 minutes", "30m"), ("1 hour", "1h"), ("2 hours", "2h"), ("4 hours", "4h"),
                 ("8 hours", "8h"), ("1 day", "1d"), ("3 days", "3d"), ("1 week", "7d")]  # fmt: skip


def _silence_rows(silences: list[dict], now: float) -> list[list]:
    return [
        [
            s["rule_id"] or "any rule",
            ", ".join(f"{k}={v}" for k, v in s["labels"].items()) or "–",
            f"{format_time(s['until'])} (in {_ago(s['until'] - now)})",
            s["created_by"],
            s["reason"],
            html.Button(
                "End now", id={"type": ids.SILENCE_END, "silence": s["id"]}, className="theme-toggle"
            ),
        ]
        for s in silences
    ]


def _target_rows(targets: list[dict]) -> list[list]:
    return [
        [
            _badge("failing", "firing") if t["failing"] else _badge("ok", "inactive"),
            t["name"],
            html.Code(t["target"]),
            str(t["delivered"]),
            str(t["failed"]),
            html.Span(f"{format_time(t['last_error_at'])}: {t['last_error']}", className="rule-error")
            if t["last_error"]
            else "–",
        ]
        for t in targets
    ]


def alerts_body(
    rules: list[dict],
    active: list[dict],
    history: list[dict],
    now: float,
    silences: list[dict] = (),
    targets: list[dict] = (),
    sender: str | None = None,
) -> list:
    """Return the Alerts page's sections from the rules (with status), active alerts, history, the
    silences in force and the notification targets (with what each delivered and its last error).
    ``sender``: which replica evaluates and notifies, when several share the state (None: this one)."""
    active_rows = [
        [
            _state(a),
            _badge(a["severity"], a["severity"]),
            a["name"],
            _labels(a),
            _value(a),
            f"{format_time(_since(a))} ({_ago(now - _since(a))})",
            a["annotations"].get("summary", ""),
        ]
        for a in active
    ]
    rule_rows = [
        [
            _badge(
                r["status"]["state"] if r["enabled"] else "disabled",
                r["status"]["state"] if r["enabled"] else "off",
            ),
            r["name"],
            html.Code(r["promql"]),
            "" if r.get("expr") else f"{r['condition']} {format_value(r['threshold'], r.get('unit'))}",
            _ago(r["for"]),
            _badge(r["severity"], r["severity"]),
            html.Span(r["status"]["error"], className="rule-error") if r["status"]["error"] else "",
        ]
        for r in rules
    ]
    history_rows = [
        [
            _badge(h["severity"], h["severity"]),
            h["name"],
            _labels(h),
            format_time(h["fired_at"]),
            format_time(h["resolved_at"]),
            _ago((h["resolved_at"] or now) - (h["fired_at"] or now)),
        ]
        for h in history[:100]
    ]
    return [
        html.H2("Active", className="section-title"),
        _table(
            ["state", "severity", "alert", "labels", "value", "since", "summary"],
            active_rows,
            "Nothing is pending or firing.",
        ),
        html.H2("Silences", className="section-title"),
        _table(
            ["rule", "labels", "until", "by", "reason", ""],
            _silence_rows(list(silences), now),
            "No silence in force: every alert is notified.",
        ),
        html.H2("Notifications", className="section-title"),
        *([html.P(sender, className="section-note")] if sender and targets else []),
        _table(
            ["state", "target", "where", "delivered", "given up", "last error"],
            _target_rows(list(targets)),
            "No notification target: set alerts.notify (Apprise URLs), webhooks or alertmanager.",
        ),
        html.H2("Rules", className="section-title"),
        _table(["state", "rule", "query", "condition", "for", "severity", "error"], rule_rows, "No rules."),
        html.H2("History", className="section-title"),
        _table(
            ["severity", "alert", "labels", "fired", "resolved", "lasted"],
            history_rows,
            "No alert has fired and resolved yet.",
        ),
    ]


def alerts_page() -> html.Div:
    """Return the Alerts page; its body is filled by a callback and refreshed with the pages."""
    return html.Div(
        className="dashboard alerts-page",
        children=[
            page_head(
                "Alerts",
                "Rules from the configuration's alerts/ and the API, what fires now, and what fired before.",
            ),
            silence_form(),
            html.Div(id=ids.ALERTS_BODY, className="alerts-body"),
        ],
    )


def silence_form() -> html.Div:
    """The form that mutes a rule's alerts, or those with some labels, for a while (operators)."""
    return html.Div(
        className="silence-section",
        children=[
            html.H2("Mute alerts", className="section-title"),
            html.Div(
                className="key-form silence-form",
                children=[
                    dcc.Dropdown(
                        id=ids.SILENCE_RULE, options=[], placeholder="Rule (any)", className="silence-rule"
                    ),
                    dcc.Input(id=ids.SILENCE_LABELS, placeholder="Labels, e.g. host=web-1, mount=/"),
                    dcc.Dropdown(
                        id=ids.SILENCE_FOR,
                        options=[{"label": f"for {label}", "value": v} for label, v in SILENCE_SPANS],
                        value="1h",
                        clearable=False,
                        className="silence-for",
                    ),
                    dcc.Input(
                        id=ids.SILENCE_REASON, placeholder="Why (kept in the audit log)", maxLength=500
                    ),
                    html.Button("Mute", id=ids.SILENCE_CREATE, className="theme-toggle key-create"),
                ],
            ),
            html.Div(id=ids.SILENCE_MESSAGE, className="new-key"),
            dcc.Store(id=ids.SILENCE_CHANGED, data=0),
        ],
    )


def parse_labels(text: str | None) -> dict[str, str]:
    """Read ``a=b, c=d`` as labels; raise ValueError saying which part is not name=value."""
    labels = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{part.strip()!r} is not name=value")
        labels[name.strip()] = value.strip().strip("\"'")
    return labels
