"""Pushes handed on to the server by Prometheus remote write, when Pulseboard reads from one.

With ``source: prometheus`` a replica keeps no metric history: what applications push to it (the JSON
push, OTLP, InfluxDB line protocol, remote write) is checked as an embedded Pulseboard checks it, then
sent to the server's remote write receiver (Prometheus started with
``--web.enable-remote-write-receiver``, VictoriaMetrics, Mimir) and acknowledged only once the server
acknowledged it. The server's refusal (4xx) is answered 400 with its reason; a server that cannot be
reached or fails (5xx) is answered 503, so the client sends again.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager

import cramjam
import numpy as np
import requests

from ingest.batch import Batch
from ingest.prompb.remote_pb2 import WriteRequest
from ingest.registration import MetricError
from tsdb.metrics import Labels, Sample

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "pulseboard",
}


def write_request(series: Iterable[tuple[str, Labels, Iterable[tuple[float, float]]]]) -> bytes:
    """A snappy-compressed remote write 1.0 body: each series' labels sorted by name, its samples by
    time, times in milliseconds."""
    request = WriteRequest()
    for name, labels, points in series:
        one = request.timeseries.add()
        for key, value in sorted((("__name__", name), *labels)):
            one.labels.add(name=key, value=value)
        for at, value in sorted(points, key=lambda p: p[0]):
            one.samples.add(value=value, timestamp=int(round(at * 1000)))
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def batch_series(batch: Batch) -> list[tuple[str, Labels, list[tuple[float, float]]]]:
    """A batch's samples grouped by series."""
    order = np.argsort(batch.rows, kind="stable")
    rows, times, values = batch.rows[order], batch.times[order], batch.values[order]
    out = []
    for start, end in _runs(rows):
        name, labels = batch.keys[int(rows[start])]
        out.append((name, labels, list(zip(times[start:end].tolist(), values[start:end].tolist()))))
    return out


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    if not len(rows):
        return []
    edges = np.flatnonzero(np.diff(rows)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [len(rows)]))
    return list(zip(starts.tolist(), ends.tolist()))


class Forwarder:
    """Send samples to one server by remote write, with the server's credentials. ``totals`` keeps the
    running totals replicas add increments to (``adding(series)``: a context giving ``add``)."""

    def __init__(self, url: str, session: requests.Session, timeout: float, totals):
        self.url = url
        self.http = session
        self.timeout = timeout
        self.totals = totals
        self.sent = 0  # samples the server acknowledged

    def adding(self, series: list[tuple[str, Labels]]) -> AbstractContextManager:
        """Lock the running totals of ``series`` until the block (which forwards them) ends."""
        return self.totals.adding(series)

    def send_samples(self, samples: list[Sample]) -> int:
        grouped: dict[tuple[str, Labels], list[tuple[float, float]]] = {}
        for s in samples:
            grouped.setdefault((s.name, s.labels), []).append((s.timestamp, s.value))
        self.send(write_request((n, labels, points) for (n, labels), points in grouped.items()), len(samples))
        return len(samples)

    def send_batch(self, batch: Batch) -> int:
        self.send(write_request(batch_series(batch)), len(batch))
        return len(batch)

    def send(self, body: bytes, samples: int) -> None:
        """POST a snappy-compressed WriteRequest; return once the server acknowledged it."""
        try:
            answer = self.http.post(self.url, data=body, headers=HEADERS, timeout=self.timeout)
        except requests.RequestException as exc:
            raise MetricError(
                f"the metrics server ({self.url}) could not be reached: {type(exc).__name__}; "
                "nothing was stored, send again",
                503,
                "body",
            ) from None
        if 400 <= answer.status_code < 500:
            reason = answer.text.strip()[:500] or answer.reason
            raise MetricError(f"the metrics server refused the samples: {reason}", 400, "body")
        if not answer.ok:
            raise MetricError(
                f"the metrics server answered {answer.status_code}; nothing was stored, send again",
                503,
                "body",
            )
        self.sent += samples
