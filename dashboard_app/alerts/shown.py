"""Which rules, alerts and silences a reader is shown: those of the metrics they may read."""

from __future__ import annotations

from collections.abc import Iterable

from dashboard_app.access.scoped import reads
from dashboard_app.alerts.rules import AlertRule


def visible_rules(rules: Iterable[AlertRule]) -> list[AlertRule]:
    """Return the rules whose metric the caller may read."""
    mine = reads()
    return [r for r in rules if mine.visible(r.metric)]


def visible_alerts(alerts: list[dict]) -> list[dict]:
    """Return the alerts whose metric the caller may read (one of a rule since deleted: admins only)."""
    mine = reads()
    return [a for a in alerts if mine.visible(a.get("metric", ""))]


def visible_silences(runtime) -> list:
    """Return the silences in force on rules the caller may see (and those naming labels only)."""
    rules = runtime.rules.rules
    mine = reads()
    return [
        s
        for s in runtime.silences.active()
        if s.rule_id is None or (s.rule_id in rules and mine.visible(rules[s.rule_id].metric))
    ]
