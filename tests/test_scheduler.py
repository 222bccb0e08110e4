"""The scheduler: a collector that raises or hangs leaves the others running."""

from __future__ import annotations

import threading
import time

from collectors.scheduler import Scheduler
from tsdb.metrics import MetricSpec, Sample


class Ticker:
    name = "ticker"
    metrics = (MetricSpec("ticks", "gauge", "count", "Ticks."),)

    def __init__(self, clock):
        self.clock = clock
        self.calls = 0

    def collect(self):
        self.calls += 1
        return [Sample("ticks", (), float(self.calls), self.clock())]


class Broken:
    name = "broken"
    metrics = ()

    def collect(self):
        raise RuntimeError("sensor unplugged")


class Hanging:
    name = "hanging"
    metrics = ()

    def __init__(self):
        self.release = threading.Event()

    def collect(self):
        self.release.wait(30)
        return []


def test_a_failing_job_is_recorded_and_the_others_go_on(store, clock):
    scheduler = Scheduler(clock)
    ticker = Ticker(clock)
    scheduler.collect(ticker, store, 1)
    scheduler.collect(Broken(), store, 1)
    for _ in range(3):
        scheduler.run_once("broken")
        scheduler.run_once("ticker")
        clock.advance(1)
    health = {h["name"]: h for h in scheduler.health()}
    assert health["broken"]["failures"] == 3 and health["broken"]["last_success"] is None
    assert health["broken"]["last_error_message"] == "RuntimeError: sensor unplugged"
    assert health["ticker"]["runs"] == 3 and health["ticker"]["failures"] == 0
    assert health["ticker"]["last_samples"] == 1
    assert store.series("ticks")


def test_a_hanging_collector_does_not_stop_the_others(store):
    scheduler = Scheduler()
    ticker, hanging = Ticker(time.time), Hanging()
    scheduler.collect(hanging, store, 0.05)
    scheduler.collect(ticker, store, 0.05)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while ticker.calls < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ticker.calls >= 5
        health = {h["name"]: h for h in scheduler.health()}
        assert health["hanging"]["running_since"] is not None
        assert health["hanging"]["hung"] is True  # stuck for more than three intervals
    finally:
        hanging.release.set()
        scheduler.stop()


def test_metric_declarations_reach_the_store(store, clock):
    scheduler = Scheduler(clock)
    scheduler.collect(Ticker(clock), store, 1)
    assert store.specs["ticks"].unit == "count"
