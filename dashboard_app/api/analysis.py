"""Analysis endpoints: performance with evidence, trends with forecasts, anomalies."""

from __future__ import annotations

from flask import request

from dashboard_app.access.permissions import Permission
from dashboard_app.access.scoped import reads
from dashboard_app.analysis import reports as analysis
from dashboard_app.api.frame import Api, ApiError, parse_step, parse_time, query_number
from dashboard_app.runtime import Runtime
from query.promql.values import MAX_POINTS

SERIES = {"series": {"type": "array", "items": {"type": "object"}}}


def _query_params(required: bool = True) -> list[dict]:
    names = [("start", "Unix seconds or RFC 3339"), ("end", "Unix seconds or RFC 3339 (default now)")]
    params = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
        for n, d in names
    ]
    if required:
        params.insert(0, {"name": "query", "in": "query", "required": True, "schema": {"type": "string"}})
        for name in ("step", "horizon", "threshold"):
            params.append({"name": name, "in": "query", "required": False, "schema": {"type": "number"}})
        params.append({"name": "aggregation", "in": "query", "required": False, "schema": {"type": "string"}})
    return params


def _window(runtime: Runtime, default_span: float) -> tuple[float, float]:
    end = parse_time(request.args.get("end") or runtime.clock(), "end")
    start = parse_time(request.args.get("start") or end - default_span, "start")
    if end <= start:
        raise ApiError("end must be after start", field="end")
    return start, end


def _series_request(runtime: Runtime, default_span: float) -> tuple[str, float, float, float, str]:
    selector = request.args.get("query")
    if not selector:
        raise ApiError(
            "query must be a series selector such as pulseboard_system_disk_usage_ratio", field="query"
        )
    start, end = _window(runtime, default_span)
    step = parse_step(query_number("step", max((end - start) / 500, reads().api.min_step)))
    if (end - start) / step > MAX_POINTS:
        raise ApiError(f"at most {MAX_POINTS:,} points per series: raise the step", field="step")
    aggregation = request.args.get("aggregation", "avg")
    return selector, start, end, step, aggregation


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the analysis endpoints."""

    @api.route(
        "GET",
        "/analysis/performance",
        "Latency, throughput, errors and saturation against thresholds, with recommendations",
        "analysis",
        params=_query_params(required=False),
        allow=Permission("analyst", "read", series="all"),
        answer={
            "window": {"type": "object"},
            "compared_with": {"type": "string"},
            "current": {"type": "object"},
            "baseline": {"type": "object"},
            "status": {"type": "object"},
            "recommendations": {"type": "array", "items": {"type": "string"}},
        },
    )
    def performance():
        start, end = _window(runtime, 3600)
        with runtime.query_gate.slot():
            limits = analysis.thresholds(runtime.dashboards["operations"])
            return analysis.performance(reads().api, start, end, limits)

    @api.route(
        "GET",
        "/analysis/trends",
        "Per series: linear trend, forecast and time to a threshold",
        "analysis",
        params=_query_params(),
        allow=Permission("analyst", "read", series="query"),
        answer={"window": {"type": "object"}, "horizon": {"type": "number"}, **SERIES},
    )
    def trends():
        selector, start, end, step, aggregation = _series_request(runtime, 6 * 3600)
        horizon = query_number("horizon", (end - start) / 4)
        if horizon <= 0 or horizon / step > MAX_POINTS:
            raise ApiError(f"horizon must be positive and at most {MAX_POINTS:,} steps", field="horizon")
        threshold = query_number("threshold", None)
        with runtime.query_gate.slot():
            series = analysis.trends(reads().api, selector, start, end, step, aggregation, horizon, threshold)
        return {"window": {"start": start, "end": end, "step": step}, "horizon": horizon, "series": series}

    @api.route(
        "GET",
        "/analysis/anomalies",
        "Per series: points far from their rolling median (robust z-score over MAD)",
        "analysis",
        params=_query_params(),
        allow=Permission("analyst", "read", series="query"),
        answer={"method": {"type": "string"}, "threshold": {"type": "number"}, **SERIES},
    )
    def anomalies():
        selector, start, end, step, aggregation = _series_request(runtime, 6 * 3600)
        threshold = query_number("threshold", 4.0)
        if threshold <= 0:
            raise ApiError("threshold must be positive (robust standard deviations)", field="threshold")
        with runtime.query_gate.slot():
            series = analysis.anomaly_points(reads().api, selector, start, end, step, aggregation, threshold)
        return {"method": "rolling median and MAD", "threshold": threshold, "series": series}
