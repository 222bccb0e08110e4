"""InfluxDB's write endpoints, so Telegraf and the InfluxDB clients can send to Pulseboard unchanged.

``POST /api/v2/write`` (InfluxDB 2: ``Authorization: Token KEY``, ``precision`` ns, us, ms or s) and
``POST /write`` (InfluxDB 1: Basic auth with the key as password, ``precision`` n, u, ms, s, m or h),
gzip bodies accepted (reading from a server, forwarded to it, answered after it acknowledged). The
request is stored whole or not at all and written to disk before the answer:
204 when every field was kept, 200 listing the string fields left out, 4xx naming the line otherwise.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from dashboard_app.access.permissions import INGEST, Permissions
from dashboard_app.protocols.body import SAMPLES, counted, read_body
from dashboard_app.runtime import Runtime
from ingest.line_protocol import parse
from ingest.registration import MetricError

ENDPOINTS = {  # rule -> (version, the precisions it takes)
    "/api/v2/write": (2, ("ns", "us", "ms", "s")),
    "/write": (1, ("n", "ns", "u", "us", "ms", "s", "m", "h")),
}


def add_routes(server: Flask, runtime: Runtime, permissions: Permissions) -> None:
    """Serve InfluxDB's two write endpoints."""
    for rule, (version, precisions) in ENDPOINTS.items():
        view = counted(
            runtime, f"influx-v{version}", lambda precisions=precisions: _write(runtime, precisions)
        )
        server.add_url_rule(rule, f"influx_write_v{version}", view, methods=["POST"])
        permissions.route(rule, ("POST",), INGEST)


def _write(runtime: Runtime, precisions: tuple[str, ...]) -> Response:
    precision = request.args.get("precision", "ns")
    if precision not in precisions:
        raise MetricError(f"precision must be one of {', '.join(precisions)}", 400, "precision")
    try:
        text = read_body(runtime.settings.ingest.max_body).decode("utf-8")
    except UnicodeDecodeError:
        raise MetricError("the body is not UTF-8 text", 400, "body") from None
    samples, skipped = parse(text, precision, runtime.clock(), runtime.protocol_ingest.expect)
    if not len(samples) and not skipped:
        raise MetricError("the body holds no lines", 400, "body")
    if runtime.forward is not None:  # reading from a server: checked here, then sent on to it
        runtime.protocol_ingest.check(samples)
        stored = runtime.forward.send_batch(samples) if len(samples) else 0
    else:
        stored = runtime.protocol_ingest.accept(samples, "influx") if len(samples) else 0
    runtime.instruments.count(SAMPLES, {"protocol": "influx"}, stored)
    if not skipped:
        return Response(status=204)
    return jsonify(
        {
            "ok": True,
            "stored": stored,
            "skipped": [{"line": s.line, "field": s.field, "reason": s.reason} for s in skipped],
        }
    )
