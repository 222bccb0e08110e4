"""The demo shop's numbers hang together; Pulseboard's own requests and jobs show up as metrics."""

from __future__ import annotations

import numpy as np
import requests

from collectors.demo import DemoWorkload, traffic_shape
from ingest.catalog import CATALOG
from ingest.custom import CustomMetrics
from tsdb.store import Store, Tier


def demo_store(clock):
    store = Store(Tier(0, 3600), 1, [Tier(60, 86400)], clock=clock)
    metrics = CustomMetrics(store, clock=clock)
    for definition in CATALOG:
        metrics.register(definition, save=False)
    return store, DemoWorkload(metrics, clock, seed=7)


def test_an_hour_of_demo_history_feeds_every_catalog_metric(clock):
    store, demo = demo_store(clock)
    assert demo.backfill(3600) > 0
    for definition in CATALOG:
        assert store.series(definition.name), definition.name
    sessions = store.latest(["pulseboard_business_sessions_total"])[0][2]
    conversions = store.latest(["pulseboard_business_conversions_total"])[0][2]
    assert 0.01 < conversions / sessions < 0.08  # about 3.4 %
    created = store.latest(["pulseboard_business_carts_created_total"])[0][2]
    abandoned = store.latest(["pulseboard_business_carts_abandoned_total"])[0][2]
    assert 0 < abandoned < created
    orders = sum(v for _, _, v in store.latest(["pulseboard_business_orders_total"]))
    assert orders == conversions


def test_demo_counters_only_grow_and_runs_continue_the_history(clock):
    store, demo = demo_store(clock)
    demo.backfill(600)
    before = store.latest(["pulseboard_business_revenue_total"])[0][2]
    for _ in range(3):
        clock.advance(5)
        assert demo.run() > 0
    [series] = store.series("pulseboard_business_revenue_total")
    _, values = store.read_raw(series.id, 0, clock.now)
    assert np.all(np.diff(values) >= 0) and values[-1] >= before


def test_traffic_is_busier_in_the_afternoon_than_at_night():
    day = 1_764_028_800.0  # a Tuesday, 00:00 UTC
    assert traffic_shape(day + 15 * 3600) > traffic_shape(day + 3 * 3600)


def test_pulseboard_counts_its_own_requests_errors_and_jobs(pulseboard):
    for _ in range(3):
        assert requests.get(pulseboard.url + "/api/v1/monitoring/metrics/stats", timeout=10).ok
    assert requests.get(pulseboard.url + "/api/v1/monitoring/nothing", timeout=10).status_code == 404
    runtime = pulseboard.runtime
    runtime.scheduler.run_once("system")
    runtime.scheduler.run_once("self")
    store = runtime.store
    requests_total = {s.labels: v for s, _, v in store.latest(["pulseboard_http_requests_total"])}
    stats = (("method", "GET"), ("route", "/api/v1/monitoring/metrics/stats"), ("status", "200"))
    assert requests_total[stats] == 3.0
    errors = {s.label_dict["status"]: v for s, _, v in store.latest(["pulseboard_http_errors_total"])}
    assert errors["404"] == 1.0
    assert store.latest(["pulseboard_http_request_duration_seconds_count"])
    durations = {
        s.label_dict["collector"] for s, _, _ in store.latest(["pulseboard_collector_duration_seconds"])
    }
    assert "system" in durations
    assert store.latest(["pulseboard_process_resident_memory_bytes"])[0][2] > 10 * 2**20
