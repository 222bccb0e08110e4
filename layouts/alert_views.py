"""Alerts on the pages: the banner every page shows and the Alerts page (rules, active, history)."""

from __future__ import annotations

from datetime import UTC, datetime

from dash import html

from layouts import ids

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _value(value: float) -> str:
    return f"{value:.4g}"


def banner(alerts: list[dict], now: float) -> list:
    """Return the banner's content: one chip per firing alert, most severe first; nothing when calm."""
    firing = [a for a in alerts if a["state"] == "firing"]
    if not firing:
        return []
    chips = [
        html.A(
            [
                html.Strong(a["name"]),
                html.Span(
                    a["annotations"].get("summary") or f"value {_value(a['value'])}", className="alert-text"
                ),
                html.Span(f"for {_ago(now - (a['fired_at'] or a['active_at']))}", className="alert-since"),
            ],
            href="/alerts",
            className=f"alert-chip severity-{a['severity']}",
            title=f"{a['severity']}: firing since {_clock(a['fired_at'])}; value {_value(a['value'])}",
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


def alerts_body(rules: list[dict], active: list[dict], history: list[dict], now: float) -> list:
    """Return the Alerts page's sections from the rules (with status), active alerts and history."""
    active_rows = [
        [
            _badge(a["state"], a["state"]),
            _badge(a["severity"], a["severity"]),
            a["name"],
            ", ".join(f"{k}={v}" for k, v in a["labels"].items() if k not in ("alertname", "severity"))
            or "–",
            _value(a["value"]),
            f"{_clock(a['fired_at'] or a['active_at'])} ({_ago(now - (a['fired_at'] or a['active_at']))})",
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
            html.Code(
                f"{r['aggregation']}({r['query']}[{r['window']:g}s])"
                + (f" predicted {r['predict']:g}s ahead" if r.get("predict") else "")
            ),
            f"{r['condition']} {r['threshold']:g}",
            f"{r['for']:g} s",
            _badge(r["severity"], r["severity"]),
            html.Span(r["status"]["error"], className="rule-error") if r["status"]["error"] else "",
        ]
        for r in rules
    ]
    history_rows = [
        [
            _badge(h["severity"], h["severity"]),
            h["name"],
            ", ".join(f"{k}={v}" for k, v in h["labels"].items() if k not in ("alertname", "severity"))
            or "–",
            _clock(h["fired_at"]),
            _clock(h["resolved_at"]),
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
            html.Div(
                className="dashboard-head",
                children=[
                    html.H1("Alerts"),
                    html.P(
                        "Rules from config/alerts and the API, what fires now, and what fired before.",
                        className="muted",
                    ),
                ],
            ),
            html.Div(id=ids.ALERTS_BODY, className="alerts-body"),
        ],
    )
