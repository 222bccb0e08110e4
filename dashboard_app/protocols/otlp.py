"""OTLP/HTTP metrics in: ``POST /v1/metrics``, as the OpenTelemetry SDKs and Collector send by default.

Protobuf (``application/x-protobuf``) or JSON (``application/json``), gzip accepted, the key as
``Authorization: Bearer KEY`` (``OTEL_EXPORTER_OTLP_HEADERS``). The export is stored whole or not at all
and on disk before the answer, an empty ExportMetricsServiceResponse in the request's encoding. Reading
from a server, the samples are forwarded to it by remote write before the answer; delta sums and
histograms add to running totals replicas share.
"""

from __future__ import annotations

from flask import Flask, Response
from flask import request as http
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from dashboard_app.access.permissions import INGEST, Permissions
from dashboard_app.protocols.body import SAMPLES, counted, read_body
from dashboard_app.runtime import Runtime
from ingest.otlp import decode, expanded, samples
from ingest.registration import MetricError
from tsdb.metrics import freeze_labels

RULE = "/v1/metrics"


def add_routes(server: Flask, runtime: Runtime, permissions: Permissions) -> None:
    """Serve OTLP/HTTP's metrics endpoint."""

    server.add_url_rule(
        RULE, "otlp_metrics", counted(runtime, "otlp", lambda: _export(runtime)), methods=["POST"]
    )
    permissions.route(RULE, ("POST",), INGEST)


def _export(runtime: Runtime) -> Response:
    json_body = http.mimetype == "application/json"
    if not json_body and http.mimetype not in ("application/x-protobuf", "application/protobuf"):
        raise MetricError("the body is application/x-protobuf or application/json", 415, "Content-Type")
    body = read_body(runtime.settings.ingest.max_body)
    ingest = runtime.protocol_ingest
    export = decode(body, json_body)
    ingest.expect(expanded(export))  # counted before a single bucket is made
    if runtime.forward is not None:  # reading from a server: delta sums add to the replicas' totals
        with runtime.forward.adding([]) as add:
            found, _ = samples(export, lambda name, labels, d: add(name, freeze_labels(labels), d))
            ingest.check(found)
            stored = runtime.forward.send_batch(found) if len(found) else 0
    else:
        found, kinds = samples(export, ingest.running_totals())
        stored = ingest.accept(found, "otlp", kinds) if len(found) else 0
    runtime.instruments.count(SAMPLES, {"protocol": "otlp"}, stored)
    answer = ExportMetricsServiceResponse()
    if json_body:
        return Response("{}", content_type="application/json")
    return Response(answer.SerializeToString(), content_type="application/x-protobuf")
