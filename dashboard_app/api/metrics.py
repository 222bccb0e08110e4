"""Metric endpoints: health, stats, latest values, range queries, exposition and pushed metrics."""

from __future__ import annotations

import time

import numpy as np
from flask import request

from dashboard_app.access.permissions import INGEST, SIGNED_IN, Permission
from dashboard_app.access.scoped import reads
from dashboard_app.api.exposition import render
from dashboard_app.api.frame import Api, ApiError, parse_step, parse_time
from dashboard_app.protocols.body import not_stored
from dashboard_app.runtime import Runtime
from ingest.registration import registration
from query.evaluate import Query
from query.promql.shorthand import ShorthandError, compile_query
from query.promql.values import MAX_POINTS
from tsdb.aggregator import AGGREGATIONS, QueryTimeout
from tsdb.metrics import ACCESS_LEVELS, CATEGORIES, METRIC_TYPES, UNIT_NAME
from tsdb.store import NotStored

REGISTER_BODY = {
    "type": "object",
    "required": ["name", "type"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "type": {"type": "string", "enum": list(METRIC_TYPES)},
        "help": {"type": "string"},
        "unit": {"type": "string", "pattern": f"^$|^{UNIT_NAME.pattern}$"},
        "labels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "access": {"type": "string", "enum": list(ACCESS_LEVELS)},
    },
    "additionalProperties": False,
}
RECORD_BODY = {
    "type": "object",
    "required": ["samples"],
    "properties": {
        "samples": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "properties": {
                    "name": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "value": {"type": "number"},
                    "timestamp": {"type": "number", "description": "Unix seconds; default now"},
                },
                "additionalProperties": False,
            },
        }
    },
}
QUERY_BODY = {
    "type": "object",
    "required": ["query"],
    "properties": {
        "query": {
            "type": "string",
            "description": "PromQL, e.g. sum by (region) (rate(shop_orders_total[5m])); or a series selector "
            'such as shop_orders_total{region="eu"} with an aggregation',
        },
        "start": {"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]},
        "end": {"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]},
        "step": {"type": "number", "exclusiveMinimum": 0},
        "aggregation": {
            "type": "string",
            "enum": list(AGGREGATIONS),
            "description": "With a selector: each point's aggregation over its step (avg when left out).",
        },
    },
}
SELECTOR_PARAM = {
    "name": "query",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "Series selector; default: every series",
}


LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}


def _series(**fields: dict) -> dict:
    """Return the schema of an answer's list of series, each with a name, labels and ``fields``."""
    item = {"type": "object", "properties": {"name": {"type": "string"}, "labels": LABELS, **fields}}
    return {"series": {"type": "array", "items": item}}


SERIES_POINTS = _series(points={"type": "array", "items": POINT, "description": "[Unix seconds, value]"})
SERIES_LATEST = _series(value={"type": "number"}, timestamp={"type": "number"})
DEFINITION = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "help": {"type": "string"},
        "unit": {"type": "string"},
        "labels": {"type": "array", "items": {"type": "string"}},
        "category": {"type": "string"},
        "access": {"type": ["string", "null"]},
    },
}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the metric endpoints."""
    store, metrics = runtime.store, runtime.metrics

    @api.route(
        "GET",
        "/metrics/health",
        "Whether every collector and the store are working",
        "metrics",
        allow=SIGNED_IN,
        answer={
            "status": {"type": "string", "enum": ["healthy", "degraded"]},
            "failing": {"type": "array", "items": {"type": "string"}},
            "storage_problems": {"type": "array", "items": {"type": "string"}},
            "series": {"type": "integer"},
            "uptime_seconds": {"type": "number"},
        },
    )
    def health():
        jobs = runtime.scheduler.health()
        failing = [j["name"] for j in jobs if j["hung"] or (j["last_error"] or 0) > (j["last_success"] or 0)]
        problems = runtime.storage_problems
        return {
            "status": "degraded" if failing or problems else "healthy",
            "failing": failing,
            "storage_problems": problems,
            "series": store.series_count,
            "uptime_seconds": runtime.clock() - runtime.started_at,
        }

    @api.route(
        "GET",
        "/metrics/stats",
        "Store size, sample counts and ingest counters",
        "metrics",
        allow=SIGNED_IN,
        answer={
            "series": {"type": "integer"},
            "metrics": {"type": "integer"},
            "memory_bytes": {"type": "integer"},
        },
    )
    def stats():
        return {
            "series": store.series_count,
            "metrics": len(reads().api.names()),  # the metrics this reader may read
            "samples_appended": store.appended,
            "samples_backfilled": store.backfilled,
            "samples_too_old": store.too_old,
            "samples_not_finite": store.not_finite,
            "max_series": store.max_series,
            "memory_bytes": store.memory_bytes(),
            "memory": store.memory_parts(),
            "disk_bytes": store.archive.disk_bytes(),
            "tiers": [{"step": t.step, "retention": t.retention} for t in store.tiers],
            "custom": {
                "registered": len(metrics.definitions),
                "samples_recorded": metrics.recorded,
                "requests_rejected": metrics.rejected,
            },
        }

    @api.route(
        "GET",
        "/metrics/latest",
        "Newest value of every series a selector matches",
        "metrics",
        params=[SELECTOR_PARAM],
        allow=Permission(series="query"),
        answer=SERIES_LATEST,
    )
    def latest():
        text = request.args.get("query") or None
        return {
            "series": [
                {"name": s.name, "labels": s.labels, "value": v, "timestamp": t}
                for s, t, v in reads().api.latest(text)
            ]
        }

    @api.route(
        "POST",
        "/metrics/query",
        "Range query: selector, start, end, step, aggregation",
        "metrics",
        QUERY_BODY,
        allow=Permission(series="body"),
        answer=SERIES_POINTS,
    )
    def query():
        body = api.json_object("a query")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(
                'query must be PromQL, or a series selector such as shop_orders_total{region="eu"} '
                "with an aggregation",
                field="query",
            )
        now = runtime.clock()
        end = parse_time(body.get("end", now), "end")
        start = parse_time(body.get("start", end - 3600), "start")
        if end < start:
            raise ApiError("end must not be before start", field="end")
        step = parse_step(body.get("step", max((end - start) / 250, 1.0)))
        if (end - start) / step > MAX_POINTS:
            raise ApiError(
                f"{(end - start) / step:,.0f} points per series asked for; at most {MAX_POINTS:,}: "
                "raise the step or narrow the range",
                field="step",
            )
        agg = body.get("aggregation")
        if agg is not None and agg not in AGGREGATIONS:
            raise ApiError(f"aggregation must be one of {', '.join(AGGREGATIONS)}", field="aggregation")
        try:  # a selector with its aggregation is the panels' shorthand: the same PromQL, the same numbers
            compiled = compile_query(text, agg, None, 1.0, None)
        except ShorthandError as exc:
            raise ApiError(str(exc).removeprefix("expr: "), field="aggregation" if agg else "query") from None
        with runtime.query_gate.slot() as deadline:
            name = compiled.metrics[0] if compiled.metrics else None
            frame = reads().api.evaluate(
                Query(compiled.promql, start, end, step, name=name, deadline=deadline)
            )
            info = frame.attrs.get("series", {})
            seconds = frame.index.as_unit("ms").asi8 / 1e3 if len(frame) else np.zeros(0)
            table = frame.to_numpy(dtype=float)
            series = []
            for i, column in enumerate(frame.columns):
                if i % 256 == 255 and time.monotonic() > deadline:  # the answer is part of the query
                    raise QueryTimeout(f"the query ran out of time writing its answer after {i:,} series")
                values = table[:, i]
                ok = np.isfinite(values)
                series.append(
                    {
                        "name": info[column].name,
                        "labels": info[column].labels,
                        "points": [[_number(t), float(v)] for t, v in zip(seconds[ok], values[ok])],
                    }
                )
        return {"series": series}

    @api.route(
        "GET",
        "/metrics/prometheus",
        "Every series the caller may read, in Prometheus text format",
        "metrics",
        allow=Permission(series="all"),
        media="text/plain",
    )
    def prometheus():
        mine = reads()  # Pulseboard's process metrics go with its own, to those who read development's
        accept = request.headers.get("Accept", "")
        return render(mine.local, store.specs, accept, process=mine.identity.sees("development"))

    @api.route(
        "POST",
        "/metrics/custom/register",
        "Register a metric",
        "custom metrics",
        REGISTER_BODY,
        status=201,
        allow=INGEST,
        answer={"created": {"type": "boolean"}, "metric": DEFINITION},
    )
    def register_metric():
        body = api.json_body()
        created = metrics.register(body, pushed=True)
        definition = metrics.definitions[body["name"]]
        return {"created": created, "metric": registration(definition)}, (201 if created else 200)

    @api.route(
        "POST",
        "/metrics/custom/record",
        "Record samples of registered metrics",
        "custom metrics",
        RECORD_BODY,
        allow=INGEST,
        answer={"stored": {"type": "integer"}},
    )
    def record():
        body = api.json_object("samples")
        unknown = sorted(set(body) - {"samples"})
        if unknown:
            raise ApiError(f"unknown field {unknown[0]!r}; the body holds samples", field=unknown[0])
        try:  # in the write-ahead log on disk before answering: an acknowledged sample survives a crash
            stored = metrics.record(body.get("samples"))
        except NotStored as exc:
            return not_stored(runtime, exc)
        return {"stored": stored}

    @api.route(
        "GET",
        "/metrics/custom/list",
        "Registered metrics the caller may read, with their series counts",
        "custom metrics",
        allow=Permission(series="all"),
        answer={"metrics": {"type": "array", "items": DEFINITION}},
    )
    def list_metrics():
        mine = reads().api
        return {
            "metrics": [
                {**registration(d), "series": len(mine.series(d.name))}
                for d in metrics.definitions.values()
                if mine.visible(d.name)
            ]
        }
