"""Zoom: 30 days of 15 s samples in one line panel, from 30 days down to 1 hour.

Each zoom is what the server does when the range changes: query the store for the panel's new
window, build its figure and serialise it. A one-sample spike 20 days back and a dip 25 minutes back must stay
visible at every zoom that holds them (each point shows its bucket's lowest and highest sample).

    python -m bench.zoom
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
from plotly.io.json import to_json_plotly

from dashboard_app.pages.panels import Window, panel_frame, render_panel
from dashboard_app.settings import load_settings
from dashboard_app.sources.source import EmbeddedSource
from layouts.schema import Panel
from tsdb.metrics import MetricSpec, Sample
from tsdb.store import build_store

SPANS = {"30d": 30 * 86400, "7d": 7 * 86400, "1d": 86400, "6h": 6 * 3600, "1h": 3600}
PANEL = Panel(id="cpu", title="CPU usage", type="line", queries=[{"expr": "bench_cpu_usage_ratio"}])


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def month(end: float) -> tuple[EmbeddedSource, float, float]:
    """A production store holding 30 days of one series sampled every 15 s, with a spike and a dip."""
    settings = load_settings("production", environ={})
    clock = Clock(end - 30 * 86400)
    store = build_store(settings, clock, journal=False)
    store.declare(MetricSpec("bench_cpu_usage_ratio", "gauge", "ratio", "CPU"))
    ts = np.arange(end - 30 * 86400, end, 15.0)
    rng = np.random.default_rng(7)
    values = np.clip(0.3 + 0.1 * np.sin(ts / 86400 * 2 * np.pi) + rng.normal(0, 0.02, len(ts)), 0, 1)
    spike, dip = len(ts) - 20 * 5760, len(ts) - 100
    values[spike], values[dip] = 0.99, 0.001
    for i in range(0, len(ts), 5000):
        clock.now = float(ts[min(i + 5000, len(ts)) - 1])
        store.append(
            Sample("bench_cpu_usage_ratio", (), float(v), float(t))
            for t, v in zip(ts[i : i + 5000], values[i : i + 5000])
        )
    clock.now = end
    return EmbeddedSource(store), float(ts[spike]), float(ts[dip])


def main(runs: int = 20) -> dict:
    end = time.time()
    source, spike_at, dip_at = month(end)
    points = load_settings("production", environ={}).dashboards.points
    out = {}
    for name, span in SPANS.items():
        window = Window(end - span, end)
        timings = []
        for _ in range(runs):
            t0 = time.perf_counter()
            to_json_plotly(render_panel(source, PANEL, window, "light", points))  # what Dash sends
            timings.append(time.perf_counter() - t0)
        frame = panel_frame(source, PANEL, window, points)
        values = frame.iloc[:, 0]
        out[name] = {
            "median_ms": statistics.median(timings) * 1000,
            "points": len(values),
            "spike_kept": bool(values.max() >= 0.99) if window.start <= spike_at else None,
            "dip_kept": bool(values.min() <= 0.001) if window.start <= dip_at else None,
        }
    out["worst_median_ms"] = max(v["median_ms"] for v in out.values())
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
