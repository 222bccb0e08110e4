"""Benchmarks for the foundation: collector overhead, store appends and memory, queries, page refresh.

Run with `make bench` (or `python -m bench.run [--collector-seconds N]`); it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from plotly.io.json import to_json_plotly

from bench.history import host_history
from bench.report import print_results
from collectors.aggregator import Aggregator
from collectors.metrics import Sample
from collectors.scheduler import Scheduler
from collectors.store import Store, Tier, build_store
from collectors.system import SystemCollector
from dashboard_app.panels import Window, render_dashboard
from dashboard_app.settings import load_settings
from dashboard_app.sources import EmbeddedSource
from layouts.dashboards import load_dashboards


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def collector_overhead(seconds: float) -> dict:
    """CPU time of this process while the system collector runs every second into a store."""
    store = build_store(load_settings("production", environ={}))
    scheduler = Scheduler()
    scheduler.collect(SystemCollector(), store, 1.0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    scheduler.start()
    time.sleep(seconds)
    scheduler.stop()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    runs = scheduler.health()[0]["runs"]
    return {
        "cpu_seconds_per_minute": cpu / wall * 60,
        "percent_of_one_core": cpu / wall * 100,
        "collections": runs,
        "samples_per_collection": store.appended / max(runs, 1),
    }


def append_rate(batches: int = 500, batch: int = 1000, series: int = 100) -> dict:
    clock = Clock(1_764_000_000.0)
    store = Store(Tier(0, 3600), 1, [Tier(60, 7 * 86400), Tier(3600, 30 * 86400)], clock=clock)
    labels = [(("series", str(i)),) for i in range(series)]
    per = batch // series
    prepared = [
        [
            Sample("bench_metric", labels[j % series], float(j), clock.now + k * per + j // series)
            for j in range(batch)
        ]
        for k in range(batches)
    ]
    t0 = time.perf_counter()
    for samples in prepared:
        store.append(samples)
    elapsed = time.perf_counter() - t0
    return {"samples_per_second": batches * batch / elapsed, "batch": batch, "series": series}


def memory_production(series: int = 1000) -> dict:
    """Fill 1,000 series at production retention; buffers are preallocated, so full is what is held."""
    clock = Clock(1_764_000_000.0)
    before = rss_bytes()
    store = build_store(load_settings("production", environ={}), clock)
    labels = [(("series", str(i)),) for i in range(series)]
    for second in range(0, 3600, 1):  # an hour of 1 s samples fills the raw rings
        store.append(Sample("bench_metric", lab, float(second), clock.now + second) for lab in labels)
    return {
        "series": series,
        "buffer_mib": store.memory_bytes() / 2**20,
        "rss_growth_mib": (rss_bytes() - before) / 2**20,
    }


def seven_day_query(runs: int = 30) -> dict:
    clock = Clock(1_764_000_000.0)
    store = build_store(load_settings("production", environ={}), clock)
    start = clock.now - 7 * 86400
    ts = np.arange(start, clock.now, 15.0)
    values = np.sin(ts / 3600.0) + 1
    for i in range(0, len(ts), 5000):
        store.append(
            Sample("bench_metric", (), float(v), float(t))
            for t, v in zip(ts[i : i + 5000], values[i : i + 5000])
        )
    agg = Aggregator(store)
    step = 7 * 86400 / 1000
    timings, points = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        frame = agg.query("bench_metric", start, clock.now, step, "avg")
        timings.append(time.perf_counter() - t0)
        points = len(frame)
    return {"samples": len(ts), "points": points, "median_ms": statistics.median(timings) * 1000}


def operations_refresh(runs: int = 50) -> dict:
    """Render every operations panel for the last 15 minutes of real host readings taken once a second."""
    clock = Clock(time.time() - 900)
    settings = load_settings("production", environ={})
    store = build_store(settings, clock)
    host_history(store, clock, 900)
    source = EmbeddedSource(store, settings.query.max_points)
    dashboard = load_dashboards()["operations"]
    window = Window(clock.now - 900, clock.now)
    timings, sizes = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        figures = render_dashboard(source, dashboard, window, "light", settings.dashboards.points)
        payload = to_json_plotly(figures)  # what Dash sends back
        timings.append(time.perf_counter() - t0)
        sizes.append(len(payload))
    timings.sort()
    return {
        "panels": len(dashboard.panels),
        "p50_ms": timings[len(timings) // 2] * 1000,
        "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000,
        "payload_kib": statistics.median(sizes) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--collector-seconds", type=float, default=60.0)
    args = parser.parse_args()
    results = {
        "collector (system, 1 s interval)": collector_overhead(args.collector_seconds),
        "store append (batches of 1,000)": append_rate(),
        "store memory (1,000 series, production)": memory_production(),
        "query (7 d of 15 s data -> 1,000 points)": seven_day_query(),
        "operations refresh (server side, 16 panels)": operations_refresh(),
    }
    print_results(results)


if __name__ == "__main__":
    main()
