"""What every protocol adapter does with a request: read its body (gzip too), store before answering,
refuse in one shape and count what it answered."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable

from flask import Response, jsonify, request

from dashboard_app.runtime import Runtime
from ingest.incoming import BodyError
from ingest.registration import MetricError
from tsdb.store import NotStored

# One push is decoded and stored at a time: in one process the interpreter runs one thread's Python at
# a time anyway, and pushes taking turns spare it the switching (a third more pushes a second with four
# Prometheus shards sending at once).
_TURN = threading.Lock()

SAMPLES = "pulseboard_ingest_samples_total"
REQUESTS = "pulseboard_ingest_requests_total"


def refusal(message: str, status: int, field: str | None = None) -> Response:
    """Pulseboard's error shape, with the code and message the InfluxDB and OTLP clients print."""
    body = {"ok": False, "error": message, "status": status, "code": "invalid", "message": message}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def counted(runtime: Runtime, protocol: str, handle: Callable[[], Response]) -> Callable[[], Response]:
    """Return a view that answers with ``handle``, refuses bad requests in one shape, and counts each."""

    def view() -> Response:
        status = 500
        try:
            with _TURN:
                response = handle()
            status = response.status_code
            return response
        except MetricError as exc:
            status = exc.status
            return refusal(str(exc), exc.status, exc.field)
        except BodyError as exc:
            status = 400
            return refusal(str(exc), 400, exc.field)
        except NotStored as exc:
            status = exc.status
            return not_stored(runtime, exc)
        finally:
            runtime.instruments.count(REQUESTS, {"protocol": protocol, "status": str(status)})

    return view


def read_body(limit: int) -> bytes:
    """Return the request's body, unpacked when gzip; refuse one over ``limit`` bytes unpacked (413)."""
    raw = request.get_data(cache=False)
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, limit + 1)
        except zlib.error as exc:
            raise MetricError(f"the body is not valid gzip: {exc}", 400, "body") from None
    if len(raw) > limit:
        message = f"the body is larger than {limit:,} bytes (after gzip); send smaller batches"
        raise MetricError(message, 413, "body")
    return raw


def not_stored(runtime: Runtime, exc: NotStored) -> Response:
    """Answer a push the data directory could not take: 507, nothing of it kept, so a retry counts once."""
    runtime.instruments.count("pulseboard_storage_write_errors_total", {})
    return refusal(f"{exc}; nothing was stored: free space or fix its permissions, then send them again", 507)
