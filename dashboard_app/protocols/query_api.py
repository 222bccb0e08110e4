"""Prometheus' HTTP query API over the embedded store, so Grafana's Prometheus data source and any
Prometheus API client read Pulseboard unchanged.

``/api/v1/query``, ``query_range``, ``series``, ``labels``, ``label/<name>/values``, ``metadata`` and
``status/buildinfo``, by GET or POST form, answering in Prometheus' JSON shapes and error shape
(``{"status": "error", "errorType": "bad_data", "error": ...}``). Every read goes through the caller's
identity: metrics of other levels are not listed, and naming one is refused (403) with the reason.
"""

from __future__ import annotations

import math
from datetime import datetime

from flask import Flask, Response, jsonify, request

from dashboard_app import __version__
from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.api.frame import ApiError
from dashboard_app.runtime import Runtime
from dashboard_app.sources.source import NotPermitted
from query.promql import answers
from query.promql.engine import parse
from query.promql.selectors import Reader, matcher_sets
from query.promql.text import duration
from query.promql.values import MAX_TIME, NAME, BadData, Budget, Execution, Timeout

READS = Permission(series="all")  # a user's session or a key with the read scope; answers are the caller's
ROUTES = (
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/<name>/values",
    "/api/v1/metadata",
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
    }
    for rule, handler in handlers.items():
        view = _answering(runtime, handler)
        server.add_url_rule(rule, "prometheus_" + handler.__name__.strip("_"), view, methods=["GET", "POST"])
        permissions.route(rule, ("GET", "POST"), READS)
    server.add_url_rule(BUILDINFO, "prometheus_buildinfo", _buildinfo, methods=["GET"])
    permissions.route(BUILDINFO, ("GET",), Permission("viewer", "*"))


def _answering(runtime: Runtime, handler):
    def view(**path) -> Response:
        if runtime.archive is None:
            return error(
                "unavailable",
                "this Pulseboard reads from Prometheus: point Prometheus clients at that server",
                503,
            )
        scoped = reads().api
        limits = runtime.settings.query
        try:
            with runtime.query_gate.slot() as deadline:
                budget = Budget(limits.max_samples, limits.timeout, deadline)
                reader = Reader(runtime.store, scoped.visible, lambda name: scoped.check(name), budget)
                return success(handler(reader, runtime, **path))
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


def _metadata(reader: Reader, runtime: Runtime) -> dict[str, list[dict[str, str]]]:
    wanted = _param("metric")
    limit = _param("limit")
    try:
        limit = int(limit) if limit else None
    except ValueError:
        raise BadData('invalid parameter "limit": must be an integer') from None
    names = [wanted] if wanted else reader.names()
    out: dict[str, list[dict[str, str]]] = {}
    for name in names:
        spec = reader.store.specs.get(name)
        if spec is None or not reader.visible(name):
            continue
        unit = "" if spec.unit == "none" else spec.unit
        out[name] = [{"type": spec.type, "help": spec.help, "unit": unit}]
        if limit is not None and 0 <= limit <= len(out):
            break
    return out


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
