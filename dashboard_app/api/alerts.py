"""Alert endpoints: rules (list, create, change, delete, export, backtest), active alerts and history."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, g
from pydantic import ValidationError

from dashboard_app.access.permissions import Permission
from dashboard_app.access.scoped import reads
from dashboard_app.alerts.engine import backtest
from dashboard_app.alerts.rules import AlertRule, prometheus_rule_file, unknown_targets
from dashboard_app.alerts.shown import visible_alerts, visible_rules, visible_silences
from dashboard_app.alerts.silences import SilenceError
from dashboard_app.api.frame import Api, ApiError, parse_step, parse_time
from dashboard_app.runtime import Runtime
from layouts.units import format_time
from layouts.validation import describe

BACKTEST_MAX_STEPS = 20_000
READ_ONLY = ("status", "shipped", "unit", "promql")  # as the API shows a rule; a PUT may send them back
RULE_SCHEMA = AlertRule.model_json_schema(by_alias=True)
BACKTEST_BODY = {
    "type": "object",
    "properties": {
        "rule": RULE_SCHEMA,
        "rule_id": {"type": "string"},
        "start": {"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]},
        "end": {"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]},
        "step": {"type": "number", "description": "Seconds between evaluations; default the rule interval"},
    },
}


def parse_rule_body(body: object) -> AlertRule:
    """Validate a rule sent to the API; raise ApiError naming the first field at fault."""
    if not isinstance(body, Mapping):
        raise ApiError("the body must be an alert rule object", field="body")
    body = {k: v for k, v in body.items() if k not in READ_ONLY}  # what GET adds may be sent back
    try:
        return AlertRule.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        field = ".".join(str(p) for p in first) or "body"
        raise ApiError(describe(exc, "rule", {}).replace("\n", "; "), field=field) from None


RULES = {"rules": {"type": "array", "items": {"type": "object"}}}
SILENCES = {"silences": {"type": "array", "items": {"type": "object"}}}
ONE_SILENCE = {"silence": {"type": "object"}}
SILENCE_BODY = {
    "type": "object",
    "required": ["reason"],
    "properties": {
        "rule_id": {"type": "string", "description": "The rule whose alerts are muted"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "until": {"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]},
        "for": {"oneOf": [{"type": "number"}, {"type": "string"}], "description": "Seconds, or 30m, 2h, 1d"},
        "reason": {"type": "string", "description": "Why: shown on the Alerts page and in the audit log"},
    },
}


ALERTS = {"alerts": {"type": "array", "items": {"type": "object"}}}
ONE_RULE = {"rule": {"type": "object"}}
READS_RULES = Permission(series="rule")  # rules and alerts are shown to those who may read their metric
CHANGES_RULES = Permission("operator", "admin", series="rule")


def _may_read(rule: AlertRule, runtime: Runtime) -> None:
    """Refuse a rule on a metric the caller may not read (403 naming the query), or one that names
    a notification target there is not (400)."""
    scoped = reads().api
    if rule.expr is not None:
        scoped.permitted(rule.expr)
    else:
        scoped.check(rule.query)
    unknown = unknown_targets(rule, runtime.notifier.people)
    if unknown:
        raise ApiError(unknown[0], field="notify")


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the alert endpoints."""
    book, engine = runtime.rules, runtime.alerts

    def existing(rule_id: str) -> AlertRule:
        rule = book.get(rule_id)
        if rule is None or not reads().visible(rule.metric):
            raise ApiError(f"no rule {rule_id!r}; POST /alerts/rules creates one", 404, "id")
        return rule

    @api.route(
        "GET",
        "/alerts/rules",
        "The alert rules the caller may see, with their state and last error",
        "alerts",
        allow=READS_RULES,
        answer=RULES,
    )
    def list_rules():
        return {"rules": [engine.describe(r) for r in visible_rules(book.rules.values())]}

    @api.route(
        "POST",
        "/alerts/rules",
        "Create an alert rule (on a metric the author may read)",
        "alerts",
        RULE_SCHEMA,
        status=201,
        allow=CHANGES_RULES,
        answer=ONE_RULE,
    )
    def create_rule():
        rule = parse_rule_body(api.json_body())
        _may_read(rule, runtime)
        if book.get(rule.id) is not None:
            raise ApiError(f"a rule {rule.id!r} exists; PUT /alerts/rules/{rule.id} changes it", 409, "id")
        book.put(rule)
        return {"rule": engine.describe(rule)}, 201

    @api.route(
        "PUT",
        "/alerts/rules/{id}",
        "Replace an alert rule (a shipped one too)",
        "alerts",
        RULE_SCHEMA,
        allow=CHANGES_RULES,
        answer=ONE_RULE,
    )
    def update_rule(id: str):
        rule = parse_rule_body(api.json_body())
        if rule.id != id:
            raise ApiError(f"id {rule.id!r} does not match the path's {id!r}", field="id")
        existing(id)
        _may_read(rule, runtime)
        book.put(rule)
        return {"rule": engine.describe(rule)}

    @api.route(
        "DELETE",
        "/alerts/rules/{id}",
        "Delete a rule made through the API",
        "alerts",
        allow=CHANGES_RULES,
        answer={"deleted": {"type": "string"}, "restored_from_file": {"type": "boolean"}},
    )
    def delete_rule(id: str):
        existing(id)
        if not book.is_own(id):
            raise ApiError(
                f"{id!r} ships in the configuration's alerts/; set enabled: false with PUT to silence it",
                403,
                "id",
            )
        book.delete(id)
        return {"deleted": id, "restored_from_file": id in book.rules}

    @api.route(
        "GET",
        "/alerts/rules/export",
        "The enabled rules the caller may see, as a Prometheus rule file",
        "alerts",
        allow=READS_RULES,
        media="application/yaml",
    )
    def export_rules():
        text = prometheus_rule_file(visible_rules(book.rules.values()))
        return Response(text, content_type="application/yaml; charset=utf-8")

    @api.route(
        "POST",
        "/alerts/rules/backtest",
        "Run a rule over stored history",
        "alerts",
        BACKTEST_BODY,
        allow=Permission("operator", "read", series="rule"),
        answer={
            "rule": {"type": "string"},
            "evaluations": {"type": "integer"},
            "events": {"type": "array", "items": {"type": "object"}},
        },
    )
    def backtest_rule():
        body = api.json_object("rule or rule_id, start and end")
        if "rule" in body:
            rule = parse_rule_body(body["rule"])
        elif isinstance(body.get("rule_id"), str) and body["rule_id"] in book.rules:
            rule = existing(body["rule_id"])
        else:
            raise ApiError("give a rule, or the rule_id of an existing rule", field="rule_id")
        _may_read(rule, runtime)
        now = runtime.clock()
        end = parse_time(body.get("end", now), "end")
        start = parse_time(body.get("start", end - 3600), "start")
        if end <= start:
            raise ApiError("end must be after start", field="end")
        step = parse_step(body.get("step", runtime.settings.alerts.interval))
        if (end - start) / step > BACKTEST_MAX_STEPS:
            raise ApiError(f"at most {BACKTEST_MAX_STEPS:,} evaluations: raise the step", field="step")
        with runtime.query_gate.slot():
            events = backtest(rule, reads().api, start, end, step)
        return {
            "rule": rule.id,
            "evaluations": int((end - start - rule.window) // step) + 1,
            "events": events,
        }

    @api.route(
        "GET",
        "/alerts/active",
        "Pending and firing alerts the caller may see",
        "alerts",
        allow=READS_RULES,
        answer=ALERTS,
    )
    def active():
        return {"alerts": visible_alerts(engine.active())}

    @api.route(
        "GET",
        "/alerts/silences",
        "Silences in force: what each mutes, until when, who made it and why",
        "alerts",
        allow=READS_RULES,
        answer=SILENCES,
    )
    def list_silences():
        return {"silences": [s.model_dump() for s in visible_silences(runtime)]}

    @api.route(
        "POST",
        "/alerts/silences",
        "Mute a rule's alerts, or those with these labels, until a time (or for a duration)",
        "alerts",
        SILENCE_BODY,
        status=201,
        allow=CHANGES_RULES,
        answer=ONE_SILENCE,
    )
    def create_silence():
        body = api.json_body()
        if not isinstance(body, Mapping):
            raise ApiError("the body must be a silence object", field="body")
        unknown = sorted(set(body) - set(SILENCE_BODY["properties"]))
        if unknown:
            raise ApiError(f"unknown field {unknown[0]!r}", field=unknown[0])
        if body.get("until") is not None and not isinstance(body["until"], int | float):
            body = {**body, "until": parse_time(body["until"], "until")}
        try:
            silence = runtime.silences.request(
                {r.id: r for r in visible_rules(book.rules.values())},
                body.get("rule_id"),
                body.get("labels") or {},
                body.get("until"),
                body.get("for"),
                body.get("reason"),
                reads().identity.name,
            )
        except SilenceError as exc:
            raise ApiError(str(exc), exc.status, exc.field) from None
        g.audit_detail = f"silence {silence.id} until {format_time(silence.until)}: {silence.reason}"
        return {"silence": silence.model_dump()}, 201

    @api.route(
        "DELETE",
        "/alerts/silences/{id}",
        "End a silence now",
        "alerts",
        allow=CHANGES_RULES,
        answer={"deleted": {"type": "string"}},
    )
    def delete_silence(id: str):
        if id not in {s.id for s in visible_silences(runtime)} or runtime.silences.remove(id) is None:
            raise ApiError(f"no silence {id!r} in force", 404, "id")
        return {"deleted": id}

    @api.route(
        "GET",
        "/alerts/notifications",
        "Where alerts are sent, with what each target delivered, gave up on and its last error",
        "alerts",
        allow=Permission("operator", "admin"),
        answer={"targets": {"type": "array", "items": {"type": "object"}}},
    )
    def notifications():
        return {"targets": runtime.notifier.status()}

    @api.route(
        "GET",
        "/alerts/history",
        "Alerts that fired and resolved, newest first (those the caller may see)",
        "alerts",
        allow=READS_RULES,
        answer=ALERTS,
    )
    def history():
        return {"alerts": visible_alerts(list(reversed(engine.history)))}
