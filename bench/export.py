"""Benchmarks for analysts and operators: a 30-day CSV export, alert evaluation, a trend forecast.

Run with `make bench` (or `python -m bench.export`); it prints a Markdown table.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import numpy as np

from bench.report import print_results
from dashboard_app.alerts.engine import AlertEngine
from dashboard_app.alerts.rules import AlertRule, RuleBook, load_rule_files
from dashboard_app.analysis.csv_export import stream_query
from dashboard_app.config_dir import ConfigDir
from dashboard_app.settings import load_settings
from dashboard_app.sources.source import EmbeddedSource
from query.statistics import forecast
from tsdb.metrics import Sample
from tsdb.store import build_store


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def month_store(series: int = 4):
    """Production retention with 30 days of 15 s readings for a few series."""
    clock = Clock(1_764_000_000.0)
    store = build_store(load_settings("production", environ={}), clock)
    ts = np.arange(clock.now - 30 * 86400, clock.now, 15.0)
    for s in range(series):
        values = (
            0.5 + 0.3 * np.sin(ts / 86400 * 2 * np.pi + s) + np.random.default_rng(s).normal(0, 0.02, len(ts))
        )
        for i in range(0, len(ts), 20_000):
            store.append(
                Sample("bench_usage_ratio", (("host", f"h{s}"),), float(v), float(t))
                for t, v in zip(ts[i : i + 20_000], values[i : i + 20_000])
            )
    return store, clock


def export_month() -> dict:
    """Stream 30 days at a 1-minute step for 4 series; compare peak memory with building it whole."""
    store, clock = month_store()
    source = EmbeddedSource(store, 10**9)
    start, end = clock.now - 30 * 86400, clock.now
    tracemalloc.start()
    t0 = time.perf_counter()
    rows = size = 0
    for line in stream_query(source, ["bench_usage_ratio"], start, end, 60, "avg", lambda _: "ratio"):
        rows += 1
        size += len(line)
    elapsed = time.perf_counter() - t0
    _, streamed_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    whole = source.query("bench_usage_ratio", start, end, 60, "avg").to_csv()
    _, whole_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": rows - 1,
        "mib": size / 2**20,
        "seconds": elapsed,
        "streamed_peak_mib": streamed_peak / 2**20,
        "whole_frame_peak_mib": whole_peak / 2**20,
        "whole_csv_mib": len(whole) / 2**20,
    }


def alert_evaluation(extra_rules: int = 100, runs: int = 20) -> dict:
    """One evaluation of the shipped rules plus 100 more over a month-long store."""
    store, clock = month_store(series=20)
    rules = dict(load_rule_files(ConfigDir().alerts))
    for i in range(extra_rules):
        rule = AlertRule.model_validate(
            {
                "id": f"bench-{i}",
                "name": f"Bench {i}",
                "query": f'bench_usage_ratio{{host="h{i % 20}"}}',
                "aggregation": ("avg", "max", "p95", "last")[i % 4],
                "window": 300,
                "condition": ">",
                "threshold": 0.7,
                "for": 60,
            }
        )
        rules[rule.id] = rule
    engine = AlertEngine(RuleBook(None, shipped=rules), EmbeddedSource(store), clock)
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.evaluate()
        timings.append(time.perf_counter() - t0)
        clock.now += 15
    return {
        "rules": len(rules),
        "median_ms": statistics.median(timings) * 1000,
        "max_ms": max(timings) * 1000,
    }


def trend_forecast() -> dict:
    """Holt-Winters over 7 days at 5 minutes (2,016 points), a day ahead."""
    ts = np.arange(0, 7 * 86400, 300.0)
    values = 100 + 30 * np.sin(ts / 86400 * 2 * np.pi) + np.random.default_rng(1).normal(0, 3, len(ts))
    t0 = time.perf_counter()
    result = forecast(ts, values, 86400, 300)
    return {"points": len(ts), "method": result.method, "ms": (time.perf_counter() - t0) * 1000}


def main() -> None:
    print_results(
        {
            "CSV export, 30 days at 1 min, 4 series": export_month(),
            "alert evaluation, shipped + 100 rules": alert_evaluation(),
            "forecast, 7 days at 5 min, 1 day ahead": trend_forecast(),
        }
    )


if __name__ == "__main__":
    main()
