"""What every protocol adapter does with a request: read its body (gzip too) and store before answering."""

from __future__ import annotations

import sqlite3
import zlib

from flask import request

from collectors.registration import MetricError
from dashboard_app.runtime import Runtime


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


def stored_on_disk(runtime: Runtime) -> None:
    """Write what was appended to the data directory: an acknowledged sample survives a crash."""
    if runtime.archive is None:
        return
    try:
        runtime.store.flush()
    except (OSError, sqlite3.Error) as exc:
        runtime.instruments.count("pulseboard_storage_write_errors_total", {})
        raise MetricError(
            f"the samples are in memory but could not be written to the data directory ({exc})", 507
        ) from None
