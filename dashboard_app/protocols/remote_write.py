"""Prometheus remote write 1.0 in: ``POST /api/v1/write``, as Prometheus, Grafana Alloy and vmagent send.

A snappy-compressed protobuf ``WriteRequest`` (``Content-Encoding: snappy``), the key as
``Authorization: Bearer KEY`` (``remote_write.authorization``) or basic auth with the key as password.
Stored whole or not at all and on disk before the 204; 4xx with the reason otherwise, which Prometheus
logs and does not retry. Reading from a server (``source: prometheus``), the checked body is sent on to
it, and the 204 follows its acknowledgement. Metadata-only requests set the types, help and units of names.
"""

from __future__ import annotations

from flask import Flask, Response, request

from dashboard_app.access.permissions import INGEST, Permissions
from dashboard_app.protocols.body import SAMPLES, counted
from dashboard_app.runtime import Runtime
from ingest.registration import MetricError
from ingest.remote_write import decode, metadata, samples

RULE = "/api/v1/write"


def add_routes(server: Flask, runtime: Runtime, permissions: Permissions) -> None:
    """Serve the remote write endpoint."""
    view = counted(runtime, "remote-write", lambda: _write(runtime))
    server.add_url_rule(RULE, "remote_write", view, methods=["POST"])
    permissions.route(RULE, ("POST",), INGEST)


def _write(runtime: Runtime) -> Response:
    if "io.prometheus.write.v2" in request.headers.get("Content-Type", ""):
        raise MetricError("only remote write 1.0 (prometheus.WriteRequest) is accepted", 415, "Content-Type")
    encoding = request.headers.get("Content-Encoding", "snappy").lower()
    if encoding != "snappy":
        raise MetricError("remote write bodies are snappy-compressed (Content-Encoding: snappy)", 415)
    limit = runtime.settings.ingest.max_body
    body = request.get_data(cache=False)
    if len(body) > limit:
        raise MetricError(f"the body is larger than {limit:,} bytes; send smaller batches", 413, "body")
    write = decode(body, limit)
    ingest = runtime.protocol_ingest
    described = metadata(write)
    found = samples(write)
    if runtime.forward is not None:  # reading from a server: checked here, then the body goes on to it
        ingest.check(found, nan_ok=True, relayed=True)
        runtime.forward.send(body, len(found))
        runtime.instruments.count(SAMPLES, {"protocol": "remote-write"}, len(found))
        return Response(status=204)
    kinds = {spec.name: spec.type for spec in described if runtime.store.specs.get(spec.name) is None}
    stored = ingest.accept(found, "remote-write", kinds, nan_ok=True, relayed=True) if len(found) else 0
    ingest.describe(described, "remote-write")
    runtime.instruments.count(SAMPLES, {"protocol": "remote-write"}, stored)
    return Response(status=204)
