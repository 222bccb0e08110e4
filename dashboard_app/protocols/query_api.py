"""Prometheus' HTTP query API over the embedded store, so Grafana's Prometheus data source and any
Prometheus API client read Pulseboard unchanged.

``/api/v1/query``, ``query_range``, ``series``, ``labels``, ``label/<name>/values``, ``metadata`` and
``status/buildinfo``, by GET or POST form, answering in Prometheus' JSON shapes and error shape
(``{"status": "error", "errorType": "bad_data", "error": ...}``). Every read goes through the caller's
identity: metrics of other levels are not listed, and naming one is refused (403) with the reason.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import Flask, Response, jsonify, request

from dashboard_app import __version__
from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.alerts.rules import promql
from dashboard_app.api.frame import ApiError
from dashboard_app.runtime import Runtime
from dashboard_app.sources.source import NotPermitted, SourceUnavailable
from query.promql import answers
from query.promql.engine import parse
from query.promql.printer import metric_names
from query.promql.selectors import Reader, matcher_sets
from query.promql.text import duration
from query.promql.values import MAX_TIME, NAME, BadData, Budget, Execution, Timeout, number
from tsdb.aggregator import QueryError, QueryTimeout

READS = Permission(series="all")  # a user's session or a key with the read scope; answers are the caller's
ROUTES = (
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/<name>/values",
    "/api/v1/metadata",
    "/api/v1/query_exemplars",
    "/api/v1/rules",
    "/api/v1/alerts",
)
BUILDINFO = "/api/v1/status/buildinfo"


def error(kind: str, message: str, status: int) -> Response:
    response = jsonify({"status": "error", "errorType": kind, "error": message})
    response.status_code = status
    return response


def success(data) -> Response:
    return jsonify({"status": "success", "data": data})


def add_routes(server: Flask, runtime: Runtime, permissions: Permissions) -> None:
    """Serve the Prometheus-compatible query API."""
    handlers = {
        "/api/v1/query": _query,
        "/api/v1/query_range": _query_range,
        "/api/v1/series": _series,
        "/api/v1/labels": _labels,
        "/api/v1/label/<name>/values": _label_values,
        "/api/v1/metadata": _metadata,
        "/api/v1/query_exemplars": _exemplars,
        "/api/v1/rules": _rules,
        "/api/v1/alerts": _alerts,
    }
    for rule, handler in handlers.items():
        view = _answering(runtime, handler)
        server.add_url_rule(rule, "prometheus_" + handler.__name__.strip("_"), view, methods=["GET", "POST"])
        permissions.route(rule, ("GET", "POST"), READS)
    server.add_url_rule(BUILDINFO, "prometheus_buildinfo", _buildinfo, methods=["GET"])
    permissions.route(BUILDINFO, ("GET",), Permission("viewer", "*"))


def _answering(runtime: Runtime, handler):
    def view(**path) -> Response:
        scoped = reads().api
        limits = runtime.settings.query
        try:
            if handler in OWN:  # Pulseboard's rules and alerts, whichever source holds the metrics
                return success(handler(scoped, runtime))
            if runtime.archive is None:  # scaled out: the server answers, within the caller's levels
                return success(_passed(runtime, scoped, request.path, **path))
            with runtime.query_gate.slot() as deadline:
                budget = Budget(limits.max_samples, limits.timeout, deadline)
                reader = Reader(runtime.store, scoped.visible, scoped.refuse, budget)
                return success(handler(reader, runtime, **path))
        except (QueryError, SourceUnavailable) as exc:
            status = 503 if isinstance(exc, (QueryTimeout, SourceUnavailable)) else 400
            return error("unavailable" if status == 503 else "bad_data", str(exc), status)
        except BadData as exc:
            return error("bad_data", str(exc), 400)
        except Execution as exc:
            return error("execution", str(exc), 422)
        except NotPermitted as exc:
            return error("bad_data", str(exc), 403)
        except (Timeout, ApiError) as exc:  # past the deadline, or every slot taken
            response = error("timeout" if isinstance(exc, Timeout) else "unavailable", str(exc), 503)
            response.headers["Retry-After"] = "1"
            return response

    return view


def _param(name: str) -> str | None:
    return request.values.get(name)


def _time(name: str, default: float | None = None) -> float:
    """Unix seconds or RFC 3339, as Prometheus takes them."""
    value = _param(name)
    if value is None or value == "":
        if default is None:
            raise BadData(f'invalid parameter "{name}": missing')
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise BadData(
                f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp'
            ) from None
    if not math.isfinite(seconds) or abs(seconds) > MAX_TIME:
        raise BadData(f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp')
    return seconds


def _duration(name: str) -> float:
    """Seconds, as a number or a Prometheus duration such as 15s or 1m."""
    value = _param(name)
    if not value:
        raise BadData(f'invalid parameter "{name}": missing')
    try:
        seconds = float(value)
    except ValueError:
        seconds = duration(value)
        if seconds is None:
            raise BadData(f'invalid parameter "{name}": cannot parse "{value}" to a valid duration') from None
    if not math.isfinite(seconds) or abs(seconds) > MAX_TIME:
        raise BadData(f'invalid parameter "{name}": cannot parse "{value}" to a valid duration')
    return seconds


def _query_text() -> str:
    query = _param("query")
    if query is None:
        raise BadData('invalid parameter "query": missing')
    return query


def _query(reader: Reader, runtime: Runtime) -> dict:
    at = _time("time", runtime.clock())
    return answers.instant(reader, _query_text(), round(at * 1000))


def _query_range(reader: Reader, runtime: Runtime) -> dict:
    query = _query_text()
    start, end, step = _time("start"), _time("end"), _duration("step")
    return answers.over_range(reader, query, round(start * 1000), round(end * 1000), round(step * 1000))


def _matched(reader: Reader, required: bool) -> list[dict[str, str]] | None:
    """The label sets of the series ``match[]`` selects (None when no match[] was sent)."""
    selectors = request.values.getlist("match[]")
    if not selectors:
        if required:
            raise BadData("no match[] parameter provided")
        return None
    start, end = _time("start", -math.inf), _time("end", math.inf)
    found: dict[int, dict[str, str]] = {}
    for text in selectors:
        node = parse(text)
        if type(node).__name__ != "VectorSelector":
            raise BadData(f'invalid parameter "match[]": {text} is not a series selector')
        for sid, labels in reader.select(matcher_sets(node)):
            newest = reader.store.newest(sid)
            if newest >= start and (end == math.inf or newest > -math.inf):
                found[sid] = dict(labels)
    return sorted(found.values(), key=lambda d: sorted(d.items()))


def _series(reader: Reader, runtime: Runtime) -> list[dict[str, str]]:
    return _matched(reader, required=True)


def _labels(reader: Reader, runtime: Runtime) -> list[str]:
    matched = _matched(reader, required=False)
    if matched is None:
        names = {NAME}
        for name in reader.names():
            serieses = reader.store.series(name)
            reader.budget.spend(len(serieses))
            for series in serieses:
                names.update(k for k, _ in series.labels)
        return sorted(names)
    return sorted({k for labels in matched for k in labels})


def _label_values(reader: Reader, runtime: Runtime, name: str) -> list[str]:
    matched = _matched(reader, required=False)
    if matched is None:
        if name == NAME:
            return reader.names()
        values = set()
        for metric in reader.names():
            serieses = reader.store.series(metric)
            reader.budget.spend(len(serieses))
            for series in serieses:
                values.update(v for k, v in series.labels if k == name)
        return sorted(values)
    return sorted({labels[name] for labels in matched if name in labels})


def _families(reader: Reader, names: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Histograms and summaries by their family name, as Prometheus lists them: family -> (type, parts)."""
    present = set(names)
    found: dict[str, tuple[str, list[str]]] = {}
    for name in names:
        if name.endswith("_bucket") and name[: -len("_bucket")] + "_count" in present:
            family = name[: -len("_bucket")]
            found[family] = ("histogram", [name, family + "_count", family + "_sum"])
    for name in names:
        if name in found or name + "_count" not in present or name + "_sum" not in present:
            continue
        if any("quantile" in dict(s.labels) for s in reader.store.series(name)):
            found[name] = ("summary", [name, name + "_count", name + "_sum"])
    return found


def _metadata(reader: Reader, runtime: Runtime) -> dict[str, list[dict[str, str]]]:
    wanted = _param("metric")
    limit = _param("limit")
    try:
        limit = int(limit) if limit else None
    except ValueError:
        raise BadData('invalid parameter "limit": must be an integer') from None
    visible = reader.names()
    families = _families(reader, visible)
    parts = {part: family for family, (_, members) in families.items() for part in members}
    entries: dict[str, list[dict[str, str]]] = {}
    for name in visible:
        spec = reader.store.specs.get(name)
        if spec is None:
            continue
        family = parts.get(name)
        if family is not None and family != name:
            spec = reader.store.specs.get(family) or spec  # the family's own words, when declared
        key = family or name
        if key in entries:
            continue
        unit = "" if spec.unit == "none" else spec.unit
        kind = families[family][0] if family else spec.type
        entries[key] = [{"type": kind, "help": spec.help, "unit": unit}]
    if wanted:
        return {wanted: entries[wanted]} if wanted in entries else {}
    out: dict[str, list[dict[str, str]]] = {}
    for key in sorted(entries):
        if limit is not None and 0 <= limit <= len(out):
            break
        out[key] = entries[key]
    return out


def _exemplars(reader: Reader, runtime: Runtime) -> list:
    """Pulseboard keeps no exemplars: a valid query has none (Grafana asks when exemplars are on)."""
    parse(_query_text())
    return []


def _prometheus_time(seconds: float | None) -> str:
    if seconds is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _alert_entry(alert: dict) -> dict:
    return {
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "state": alert["state"],
        "activeAt": _prometheus_time(alert["active_at"]),
        "value": number(alert["value"] if alert["value"] is not None else math.nan),
    }


def _visible_alerts(scoped, runtime: Runtime) -> list[dict]:
    return [a for a in runtime.alerts.active() if not a["metric"] or scoped.visible(a["metric"])]


def _rules(scoped, runtime: Runtime) -> dict:
    """Pulseboard's alert rules as Prometheus lists them (one group), those on the caller's metrics."""
    kind = _param("type")
    if kind not in (None, "", "alert", "record"):
        raise BadData('invalid parameter "type": must be alert or record')
    engine = runtime.alerts
    alerts: dict[str, list[dict]] = {}
    for alert in _visible_alerts(scoped, runtime):
        alerts.setdefault(alert["rule_id"], []).append(_alert_entry(alert))
    rules = []
    if kind != "record":
        for rule in engine.book.rules.values():
            if not rule.enabled or (rule.metric and not scoped.visible(rule.metric)):
                continue
            status = engine.rule_status(rule.id)
            rules.append(
                {
                    "state": status["state"],
                    "name": rule.name,
                    "query": promql(rule),
                    "duration": rule.for_,
                    "keepFiringFor": rule.keep_firing_for,
                    "labels": {"severity": rule.severity, **rule.labels},
                    "annotations": dict(rule.annotations),
                    "alerts": alerts.get(rule.id, []),
                    "health": "err" if status["error"] else "ok",
                    "lastError": status["error"] or "",
                    "evaluationTime": 0,
                    "lastEvaluation": _prometheus_time(engine.last_evaluation),
                    "type": "alerting",
                }
            )
    if kind != "alert":
        errors = engine.recording_errors
        for record in engine.book.recording:
            if not all(scoped.visible(n) for n in metric_names(record.expr)):
                continue
            rules.append(
                {
                    "name": record.record,
                    "query": record.expr,
                    "labels": dict(record.labels),
                    "health": "err" if record.record in errors else "ok",
                    "lastError": errors.get(record.record, ""),
                    "evaluationTime": 0,
                    "lastEvaluation": _prometheus_time(engine.last_evaluation),
                    "type": "recording",
                }
            )
    interval = float(runtime.settings.alerts.interval)
    group = {
        "name": "pulseboard",
        "file": "pulseboard",
        "rules": rules,
        "interval": interval,
        "limit": 0,
        "evaluationTime": 0,
        "lastEvaluation": _prometheus_time(engine.last_evaluation),
    }
    return {"groups": [group] if rules else []}


def _alerts(scoped, runtime: Runtime) -> dict:
    """Pending and firing alerts as Prometheus lists them."""
    return {"alerts": [_alert_entry(a) for a in _visible_alerts(scoped, runtime)]}


OWN = (_rules, _alerts)


def _passed(runtime: Runtime, scoped, path: str, **kwargs):
    """Ask the Prometheus server the same question; leave out names of metrics the caller may not read."""
    params = [(k, v) for k, vs in request.values.lists() for v in vs]
    data = runtime.source.passthrough(path.removeprefix("/api/v1"), params, scoped)
    if path.endswith("/label/__name__/values") and isinstance(data, list):
        return [name for name in data if scoped.visible(name)]
    if path.endswith("/metadata") and isinstance(data, dict):
        return {name: entries for name, entries in data.items() if scoped.visible(name)}
    return data


def _buildinfo() -> Response:
    return success(
        {
            "version": __version__,
            "revision": "",
            "branch": "",
            "buildUser": "pulseboard",
            "buildDate": "",
            "goVersion": "",
        }
    )
