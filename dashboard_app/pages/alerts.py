"""The Alerts page and the banner every page shows: what fires for the reader, silences made and ended."""

from __future__ import annotations

import time

from dash import ALL, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.alerts.shown import visible_alerts, visible_rules, visible_silences
from dashboard_app.alerts.silences import SilenceError
from dashboard_app.runtime import Runtime
from layouts import ids
from layouts.alert_views import SILENCE_SPANS, alerts_body, banner, parse_labels
from layouts.units import format_time

SPANS = {v for _, v in SILENCE_SPANS}


def _sender(holder: str | None) -> str:
    """Say, on a replica that does not evaluate, which one does: the counts below are this one's."""
    if holder is None:
        return "No replica evaluates the rules at this moment; the next to look takes it over."
    return (
        f"Rules are evaluated and notifications sent by the replica {holder}; "
        "the counts below are what this replica delivered since it started."
    )


def register(app: Dash, runtime: Runtime, permissions: Permissions) -> None:
    """Attach the banner's and the Alerts page's callbacks."""
    callback = permissions.callback
    alerts = Permission(series="rule")  # each reader sees the alerts of the metrics they may read

    @callback(
        app,
        alerts,
        Output(ids.ALERT_BANNER, "children"),
        Input(ids.INTERVAL, "n_intervals"),
        Input(ids.URL, "pathname"),
    )
    def alert_banner(_tick, _path):
        unmuted = [
            a for a in runtime.alerts.active() if not a["silenced_by"]
        ]  # a silence quiets the banner too
        return banner(visible_alerts(unmuted), time.time())

    @callback(
        app,
        alerts,
        Output(ids.ALERTS_BODY, "children"),
        Input(ids.INTERVAL, "n_intervals"),
        Input(ids.URL, "pathname"),
        Input(ids.SILENCE_CHANGED, "data"),
    )
    def alerts_view(_tick, _path, _changed):
        engine = runtime.alerts
        rules = [engine.describe(r) for r in visible_rules(runtime.rules.rules.values())]
        history = visible_alerts(list(reversed(engine.history)))
        silences = [s.model_dump() for s in visible_silences(runtime)]
        identity = reads().identity
        targets = runtime.notifier.status() if identity.at_least("operator") else []
        sender = None if engine.leading else _sender(engine.lease.holder_now())
        return alerts_body(
            rules, visible_alerts(engine.active()), history, time.time(), silences, targets, sender
        )

    @callback(app, alerts, Output(ids.SILENCE_RULE, "options"), Input(ids.URL, "pathname"))
    def silence_rules(_path):
        return [{"label": r.name, "value": r.id} for r in visible_rules(runtime.rules.rules.values())]

    @callback(
        app,
        Permission("operator", "admin", series="rule"),
        Output(ids.SILENCE_MESSAGE, "children"),
        Output(ids.SILENCE_CHANGED, "data"),
        Input(ids.SILENCE_CREATE, "n_clicks"),
        Input({"type": ids.SILENCE_END, "silence": ALL}, "n_clicks"),
        State(ids.SILENCE_RULE, "value"),
        State(ids.SILENCE_LABELS, "value"),
        State(ids.SILENCE_FOR, "value"),
        State(ids.SILENCE_REASON, "value"),
        State(ids.SILENCE_CHANGED, "data"),
        prevent_initial_call=True,
    )
    def silence(created, ended, rule_id, labels, span, reason, changed):
        who = reads().identity.name
        trigger = ctx.triggered_id
        changed = (changed if isinstance(changed, int) else 0) + 1
        if isinstance(trigger, dict) and trigger.get("type") == ids.SILENCE_END:
            if not any(ended or []):
                raise PreventUpdate
            chosen = str(trigger.get("silence"))
            mine = chosen in {s.id for s in visible_silences(runtime)}
            gone = runtime.silences.remove(chosen) if mine else None
            if gone is None:
                return html.P("That silence has ended already.", className="muted"), changed
            runtime.audit.write(who, "END SILENCE", gone.id, "alerts page", 200)
            return html.P(f"Silence on {gone.rule_id or 'any rule'} ended.", className="muted"), changed
        if trigger != ids.SILENCE_CREATE or not created:
            raise PreventUpdate
        try:
            silence = runtime.silences.request(
                {r.id: r for r in visible_rules(runtime.rules.rules.values())},
                rule_id if isinstance(rule_id, str) and rule_id else None,
                parse_labels(labels if isinstance(labels, str) else ""),
                None,
                span if span in SPANS else "1h",
                reason,
                who,
            )
        except SilenceError as exc:
            return html.P(f"{exc}.", className="rule-error"), no_update
        except ValueError as exc:  # labels that are not name=value
            return html.P(f"Labels: {exc}.", className="rule-error"), no_update
        detail = f"silence {silence.id} until {format_time(silence.until)}: {silence.reason}"
        runtime.audit.write(who, "SILENCE", silence.rule_id or "labels", "alerts page", 201, detail)
        return html.P(f"Muted until {format_time(silence.until)}.", className="muted"), changed
