"""Benchmarks for the foundation: collector overhead and the page refresh (the store has bench.store).

Run with `make bench` (or `python -m bench.run [--collector-seconds N]`); it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from plotly.io.json import to_json_plotly

from bench.history import host_history
from bench.report import print_results
from collectors.scheduler import Scheduler
from collectors.system import SystemCollector
from dashboard_app.config_dir import ConfigDir
from dashboard_app.pages.panels import Window, render_dashboard
from dashboard_app.runtime import collection_interval
from dashboard_app.settings import load_settings
from dashboard_app.sources.source import EmbeddedSource
from layouts.dashboards import load_dashboards
from tsdb.store import build_store


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


def operations_refresh(runs: int = 50) -> dict:
    """Render every operations panel for the last 15 minutes of real host readings taken once a second."""
    clock = Clock(time.time() - 900)
    settings = load_settings("production", environ={})
    store = build_store(settings, clock)
    host_history(store, clock, 900)
    source = EmbeddedSource(store, scrape_interval=collection_interval(settings))
    dashboard = load_dashboards(ConfigDir().dashboards)["operations"]
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
        "operations refresh (server side, 16 panels)": operations_refresh(),
    }
    print_results(results)


if __name__ == "__main__":
    main()
