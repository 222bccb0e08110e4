"""Pulseboard's own health: requests, callbacks, panel cache, collectors and the process itself.

Request threads only bump counters and queue observations here (no store lock on the hot path);
``SelfCollector`` turns them into samples at its interval, through the store's one append path.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import psutil

from tsdb.metrics import MetricSpec, Sample, freeze_labels

MAX_OBSERVATIONS = 2000  # per collection and metric; the running count and sum stay exact beyond it

DEV, OPS = "development", "operations"  # Pulseboard's own health is read on the development dashboard
COUNTERS = (
    MetricSpec(
        "pulseboard_http_requests_total",
        "counter",
        "count",
        "Requests Pulseboard answered, by route, method and status.",
        DEV,
    ),
    MetricSpec(
        "pulseboard_http_errors_total",
        "counter",
        "count",
        "Requests Pulseboard answered with a 4xx or 5xx status.",
        DEV,
    ),
    MetricSpec(
        "pulseboard_panel_cache_requests_total",
        "counter",
        "count",
        "Panels asked for on a refresh, by what was sent: unchanged (nothing), patch (the new points) "
        "or full (the whole figure).",
        DEV,
    ),
    MetricSpec(
        "pulseboard_ingest_samples_total",
        "counter",
        "count",
        "Samples stored from other protocols (InfluxDB line protocol, ...), by protocol.",
        DEV,
    ),
    MetricSpec(
        "pulseboard_ingest_requests_total",
        "counter",
        "count",
        "Write requests of other protocols answered, by protocol and status.",
        DEV,
    ),
    MetricSpec(
        "pulseboard_alert_notifications_total",
        "counter",
        "count",
        "Alert notifications delivered, by target (an Apprise URL's name, a webhook, Alertmanager).",
        OPS,
    ),
    MetricSpec(
        "pulseboard_alert_notifications_failed_total",
        "counter",
        "count",
        "Alert notifications given up on after every retry (or refused), by target.",
        OPS,
    ),
    MetricSpec(
        "pulseboard_storage_write_errors_total",
        "counter",
        "count",
        "Failed writes to the data directory (disk full, permissions).",
        OPS,
    ),
)
OBSERVED = (
    MetricSpec(
        "pulseboard_http_request_duration_seconds",
        "histogram",
        "seconds",
        "Time Pulseboard took to answer a request.",
        DEV,
    ),
    MetricSpec(
        "pulseboard_callback_duration_seconds",
        "histogram",
        "seconds",
        "Time a dashboard refresh took on the server.",
        DEV,
    ),
)


# Upper bounds of the buckets Pulseboard's own histograms count into: Prometheus' defaults, so a
# Prometheus scraping Pulseboard can take histogram_quantile of them.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf)


def bucket_label(bound: float) -> str:
    """Return a bucket's ``le`` label as Prometheus writes it."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class Instruments:
    """Thread-safe counters, gauges and observation queues that request handlers update."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple], float] = defaultdict(float)
        self._observed: dict[tuple[str, tuple], list[tuple[float, float]]] = defaultdict(list)
        self._totals: dict[tuple[str, tuple], list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._buckets: dict[tuple[str, tuple], list[tuple[str, tuple]]] = {}
        self.in_flight = 0
        self._counters[("pulseboard_storage_write_errors_total", ())] = 0.0  # an alert reads it from zero

    def count(self, name: str, labels: dict[str, str], inc: float = 1.0) -> None:
        """Add to a counter."""
        with self._lock:
            self._counters[(name, freeze_labels(labels))] += inc

    def observe(self, name: str, labels: dict[str, str], value: float) -> None:
        """Record one observation of a histogram."""
        key = (name, freeze_labels(labels))
        now = self.clock()
        with self._lock:
            queue = self._observed[key]
            if len(queue) < MAX_OBSERVATIONS:
                queue.append((now, value))
            totals = self._totals[key]
            totals[0] += 1
            totals[1] += value
            buckets = self._buckets.get(key)
            if buckets is None:  # every bucket exists from the first observation on, empty ones at 0
                buckets = self._buckets[key] = [
                    (f"{name}_bucket", tuple(sorted((*key[1], ("le", bucket_label(b)))))) for b in BUCKETS
                ]
                for bucket in buckets:
                    self._counters[bucket] += 0.0
            for bound, bucket in zip(BUCKETS, buckets):  # cumulative: each bucket the value is within
                if value <= bound:
                    self._counters[bucket] += 1

    def request_started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def request_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one answered HTTP request."""
        with self._lock:
            self.in_flight -= 1
        self.count(
            "pulseboard_http_requests_total", {"route": route, "method": method, "status": str(status)}
        )
        if status >= 400:
            self.count("pulseboard_http_errors_total", {"status": str(status)})
        self.observe("pulseboard_http_request_duration_seconds", {"route": route}, seconds)

    def drain(self, now: float) -> list[Sample]:
        """Return counter totals, queued observations and their running totals as samples."""
        out = []
        with self._lock:
            observed, self._observed = self._observed, defaultdict(list)
            for (name, labels), total in self._counters.items():
                out.append(Sample(name, labels, total, now))
            for (name, labels), (count, total) in self._totals.items():
                out.extend(Sample(name, labels, value, ts) for ts, value in observed.get((name, labels), ()))
                out.append(Sample(f"{name}_count", labels, count, now))
                out.append(Sample(f"{name}_sum", labels, total, now))
            out.append(Sample("pulseboard_http_requests_in_flight", (), float(self.in_flight), now))
        return out


class SelfCollector:
    """Collect Pulseboard's own metrics: instruments, collector health, store and process."""

    name = "self"
    metrics = (
        *COUNTERS,
        *(part for spec in OBSERVED for part in spec.parts()),
        *(
            MetricSpec(
                f"{spec.name}_bucket",
                "counter",
                "count",
                f"Observations of {spec.name} by bucket.",
                spec.level,
            )
            for spec in OBSERVED
        ),
        MetricSpec(
            "pulseboard_http_requests_in_flight", "gauge", "count", "Requests being answered now.", DEV
        ),
        MetricSpec(
            "pulseboard_collector_duration_seconds",
            "gauge",
            "seconds",
            "How long a collector's last run took.",
            DEV,  # Pulseboard's own timings, beside its request times on the development dashboard
        ),
        MetricSpec(
            "pulseboard_collector_failures_total", "counter", "count", "Collector runs that failed.", OPS
        ),
        MetricSpec("pulseboard_store_series", "gauge", "count", "Series the store holds.", DEV),
        MetricSpec(
            "pulseboard_store_memory_bytes", "gauge", "bytes", "Memory of the store's sample buffers.", DEV
        ),
        MetricSpec("pulseboard_live_connections", "gauge", "count", "Open live dashboard connections.", DEV),
        MetricSpec(
            "pulseboard_storage_problems",
            "gauge",
            "count",
            "Damage the store found since it started (a salvaged file, a chunk set aside): see /status.",
            OPS,
        ),
        MetricSpec(
            "pulseboard_process_cpu_seconds_total", "counter", "seconds", "CPU time Pulseboard has used.", DEV
        ),
        MetricSpec(
            "pulseboard_process_resident_memory_bytes", "gauge", "bytes", "Pulseboard's resident memory.", DEV
        ),
    )

    def __init__(
        self,
        instruments: Instruments,
        health: Callable[[], list[dict]],
        store_stats: Callable[[], tuple[int, int]],
        connections: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.time,
        process: psutil.Process | None = None,
        storage_problems: Callable[[], int] = lambda: 0,
    ):
        self.storage_problems = storage_problems
        self.instruments = instruments
        self.health = health
        self.store_stats = store_stats
        self.connections = connections
        self.clock = clock
        self.process = process or psutil.Process(os.getpid())

    def collect(self) -> list[Sample]:
        """Return one collection of Pulseboard's own metrics."""
        now = self.clock()
        out = self.instruments.drain(now)
        for job in self.health():
            labels = (("collector", job["name"]),)
            if job["last_duration"] is not None:
                out.append(Sample("pulseboard_collector_duration_seconds", labels, job["last_duration"], now))
            out.append(Sample("pulseboard_collector_failures_total", labels, float(job["failures"]), now))
        series, memory = self.store_stats()
        out.append(Sample("pulseboard_store_series", (), float(series), now))
        out.append(Sample("pulseboard_store_memory_bytes", (), float(memory), now))
        out.append(Sample("pulseboard_live_connections", (), float(self.connections()), now))
        out.append(Sample("pulseboard_storage_problems", (), float(self.storage_problems()), now))
        try:
            cpu = self.process.cpu_times()
            out.append(Sample("pulseboard_process_cpu_seconds_total", (), cpu.user + cpu.system, now))
            out.append(
                Sample(
                    "pulseboard_process_resident_memory_bytes", (), float(self.process.memory_info().rss), now
                )
            )
        except psutil.Error:
            pass  # the process table can refuse; the rest of the collection stands
        return out
