"""Alerts on the pages: the banner every page shows and the Alerts page (rules, active, history)."""

from __future__ import annotations

from dash import html

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
                html.Span(f"for {_ago(now - _since(a))}", className="alert-since"),
            ],
            href="/alerts",
            className=f"alert-chip severity-{a['severity']}",
            title=f"{a['severity']}: firing since {format_time(a['fired_at'])}; value {_value(a['value'])}",
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
            _labels(a),
            _value(a["value"]),
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
            html.Div(id=ids.ALERTS_BODY, className="alerts-body"),
        ],
    )
