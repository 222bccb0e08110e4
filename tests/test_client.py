"""The Python client against a real Pulseboard: it pushes every metric kind and never hurts its caller."""

from __future__ import annotations

import time

import pytest

from collectors.client import Pulse
from dashboard_app.runtime import Runtime
from tests.servers import free_port, quiet_settings, serving


def value(runtime, name):
    return {s.labels: v for s, _, v in runtime.store.latest([name])}


def test_counters_gauges_histograms_and_timers_reach_the_store(pulseboard):
    pulse = Pulse(pulseboard.url, api_key="secret", background=False)
    orders = pulse.counter("shop_orders_total", "Orders", labels=["region"], category="business")
    depth = pulse.gauge("shop_queue_depth", "Queue depth")
    latency = pulse.histogram("shop_request_seconds", "Request time", unit="seconds")
    orders.inc(region="eu")
    orders.inc(2, region="eu")
    depth.set(4)
    latency.observe(0.2)
    with latency.time():
        time.sleep(0.01)
    assert pulse.flush() == 5
    runtime = pulseboard.runtime
    assert value(runtime, "shop_orders_total") == {(("region", "eu"),): 3.0}
    assert value(runtime, "shop_queue_depth") == {(): 4.0}
    assert value(runtime, "shop_request_seconds_count") == {(): 2.0}
    assert value(runtime, "shop_request_seconds_sum")[()] > 0.21
    assert runtime.metrics.definitions["shop_orders_total"].category == "business"


def test_pulseboard_down_costs_the_caller_nothing_and_loses_nothing(tmp_path):
    port = free_port()
    pulse = Pulse(f"http://127.0.0.1:{port}", background=False)
    jobs = pulse.counter("jobs_total", "Jobs done")
    t0 = time.perf_counter()
    for _ in range(1000):
        jobs.inc()
    assert time.perf_counter() - t0 < 1.0  # no network on the caller's path
    assert pulse.flush() == -1 and pulse.failures == 1  # nothing listens yet: kept for later
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime, port):
        assert pulse.flush() == 1000
    assert value(runtime, "jobs_total") == {(): 1000.0}
    runtime.archive.close()


def test_a_full_queue_drops_the_oldest_samples():
    pulse = Pulse("http://127.0.0.1:9", background=False, max_queue=10)
    gauge = pulse.gauge("level")
    for i in range(15):
        gauge.set(i)
    assert pulse.dropped == 5
    assert [s["value"] for s in pulse._samples] == list(range(5, 15))


def test_the_background_thread_sends_by_itself(pulseboard):
    pulse = Pulse(pulseboard.url, flush_interval=0.1)
    pulse.gauge("temperature_celsius").set(21.5)
    deadline = time.monotonic() + 10
    while not value(pulseboard.runtime, "temperature_celsius") and time.monotonic() < deadline:
        time.sleep(0.05)
    pulse.close()
    assert value(pulseboard.runtime, "temperature_celsius") == {(): 21.5}


def test_a_refused_definition_is_dropped_not_retried(pulseboard):
    pulse = Pulse(pulseboard.url, background=False)
    bad = pulse.counter("bad name")
    bad.inc()
    assert pulse.flush() == 0
    assert pulse.dropped == 1 and "bad name" not in pulseboard.runtime.metrics.definitions


@pytest.mark.parametrize("amount", [-1, -0.5])
def test_a_negative_increment_is_ignored(amount):
    pulse = Pulse("http://127.0.0.1:9", background=False)
    pulse.counter("c_total").inc(amount)
    assert not pulse._samples
