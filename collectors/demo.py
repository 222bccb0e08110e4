"""A simulated shop with a search service, so a fresh Pulseboard has business and RAG data to show.

It pushes through the Python client and the same registry an application's requests reach, with a
daily and weekly rhythm and noise. On by default in development only; pages then show a badge.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from collectors.client import Pulse
from ingest.catalog import CATALOG
from ingest.custom import CustomMetrics
from ingest.registration import MetricError

REGIONS = (("eu", 0.45), ("us", 0.4), ("apac", 0.15))
ENDPOINTS = (("/api/products", 0.045), ("/api/cart", 0.07), ("/api/search", 0.16))
OBSERVATIONS = 3  # per histogram and tick: the raw tier (one slot a second) holds 25 min of them
ERROR_TYPES = (("validation", 0.02), ("timeout", 0.006), ("server", 0.003))


class LocalTransport:
    """Hand the client's requests to the registry in this process, as the HTTP endpoints do."""

    def __init__(self, metrics: CustomMetrics):
        self.metrics = metrics

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        try:
            if path.endswith("/register"):
                return (201 if self.metrics.register(body) else 200), {"ok": True}
            return 200, {"ok": True, "stored": self.metrics.record(body.get("samples"))}
        except MetricError as exc:
            return exc.status, {"ok": False, "error": str(exc), "status": exc.status}


def traffic_shape(t: float) -> float:
    """Return how busy the shop is at a time: a daily curve peaking mid-afternoon, quieter weekends."""
    hour = (t % 86400) / 3600
    daily = 0.65 + 0.35 * math.sin(2 * math.pi * (hour - 9) / 24)
    weekday = time.gmtime(t).tm_wday
    return daily * (0.8 if weekday >= 5 else 1.0)


class DemoWorkload:
    """Simulate shop sessions, orders, carts, searches and API calls, one tick at a time."""

    name = "demo"

    def __init__(
        self, metrics: CustomMetrics, clock: Callable[[], float] = time.time, seed: int | None = None
    ):
        self.clock = clock
        self.rng = random.Random(seed)
        self._at = clock()
        self._last: float | None = None
        self.pulse = Pulse(transport=LocalTransport(metrics), background=False, clock=lambda: self._at)
        handles = {}
        for d in CATALOG:
            make = {"counter": self.pulse.counter, "gauge": self.pulse.gauge}.get(
                d.type, self.pulse.histogram
            )
            handles[d.name] = make(d.name, d.help, d.labels, d.unit, d.category)
        self.m = handles
        self.satisfaction = 4.3

    def run(self) -> int:
        """Simulate the time since the previous run and push it; return the samples stored."""
        now = self.clock()
        self.tick(now, now - self._last if self._last else 5.0)
        self._last = now
        return self.pulse.flush()

    def backfill(self, seconds: float, step: float = 5.0) -> int:
        """Simulate the last ``seconds`` so the pages open on history rather than on one point."""
        now = self.clock()
        stored = 0
        t = now - seconds
        while t < now:
            self.tick(t, step)
            t += step
        stored = self.pulse.flush()
        self._last = t - step
        return stored

    @staticmethod
    def _moment(t: float, dt: float, k: int) -> float:
        """When the k-th sampled request of a tick ending at ``t`` was answered: each at its own moment."""
        return t - min(dt, 1.0) * (OBSERVATIONS - 1 - k) / OBSERVATIONS

    def _poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))

    def tick(self, t: float, dt: float) -> None:
        """Queue the samples of ``dt`` seconds of shop life ending at ``t``."""
        self._at = t
        m, rng = self.m, self.rng
        busy = traffic_shape(t)
        sessions = self._poisson(16 * busy * dt)
        conversion = min(0.2, max(0.0, rng.gauss(0.034, 0.004)))
        orders = sum(rng.random() < conversion for _ in range(sessions))
        carts = sum(rng.random() < 0.075 for _ in range(sessions)) + orders
        m["pulseboard_business_sessions_total"].inc(sessions)
        m["pulseboard_business_conversions_total"].inc(orders)
        m["pulseboard_business_carts_created_total"].inc(carts)
        m["pulseboard_business_carts_abandoned_total"].inc(carts - orders)
        revenue = 0.0
        by_region = dict.fromkeys((r for r, _ in REGIONS), 0)
        for _ in range(orders):
            region = rng.choices([r for r, _ in REGIONS], [w for _, w in REGIONS])[0]
            by_region[region] += 1
            revenue += rng.lognormvariate(math.log(55), 0.5)
        for region, n in by_region.items():
            m["pulseboard_business_orders_total"].inc(n, region=region)
        m["pulseboard_business_revenue_total"].inc(round(revenue, 2))
        self.satisfaction = min(
            5.0, max(1.0, self.satisfaction + rng.gauss(0, 0.03) + (4.3 - self.satisfaction) * 0.05)
        )
        m["pulseboard_business_satisfaction_score"].set(round(self.satisfaction, 3))

        load = 1 + 0.6 * busy  # slower answers when busy
        for k in range(OBSERVATIONS):  # a few sampled requests a tick: enough for percentiles per minute
            self._at = self._moment(t, dt, k)
            m["pulseboard_rag_search_latency_seconds"].observe(
                rng.lognormvariate(math.log(0.12 * load), 0.35)
            )
            m["pulseboard_rag_embedding_seconds"].observe(rng.lognormvariate(math.log(0.018 * load), 0.25))
            m["pulseboard_rag_vector_search_seconds"].observe(rng.lognormvariate(math.log(0.035 * load), 0.3))
        self._at = t
        m["pulseboard_rag_search_accuracy_ratio"].set(min(1.0, max(0.0, rng.gauss(0.87, 0.02))))
        m["pulseboard_rag_recommendation_relevance_ratio"].set(min(1.0, max(0.0, rng.gauss(0.79, 0.03))))
        m["pulseboard_rag_knowledge_coverage_ratio"].set(min(1.0, max(0.0, rng.gauss(0.92, 0.01))))
        m["pulseboard_rag_query_complexity_score"].set(max(1.0, rng.gauss(3.4, 0.3)))

        requests = max(1, self._poisson(12 * busy * dt / 5))
        for endpoint, typical in ENDPOINTS:
            for k in range(OBSERVATIONS):
                self._at = self._moment(t, dt, k)
                m["pulseboard_app_request_duration_seconds"].observe(
                    rng.lognormvariate(math.log(typical * load), 0.4), endpoint=endpoint
                )
        self._at = t
        for kind, share in ERROR_TYPES:
            m["pulseboard_app_errors_total"].inc(self._poisson(requests * share), type=kind)
        hits = sum(rng.random() < 0.91 for _ in range(requests))
        m["pulseboard_app_cache_requests_total"].inc(hits, result="hit")
        m["pulseboard_app_cache_requests_total"].inc(requests - hits, result="miss")
