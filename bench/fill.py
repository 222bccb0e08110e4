"""A Pulseboard process holding 1,000 series at production retention with every tier full; prints its RSS.

Run by bench.peers in a process of its own, so the figure is the whole process: Python, Dash,
pandas and the store, as a running Pulseboard holds them.
"""

from __future__ import annotations

import json
import time

import numpy as np
import psutil

from collectors.metrics import Sample
from collectors.store import build_store
from dashboard_app.settings import load_settings
from dashboard_app.web import create_app  # noqa: F401  (a running Pulseboard has the pages loaded)

SERIES = 1000


def main() -> dict:
    baseline = psutil.Process().memory_info().rss  # Python, Dash, pandas and plotly loaded, no store
    settings = load_settings("production", environ={})
    longest = max(t.retention for t in settings.store.rollups)
    now = time.time()
    clock = [now - longest]
    store = build_store(settings, lambda: clock[0], journal=False)  # the archive's flush drains it
    labels = [(("series", str(i)),) for i in range(SERIES)]
    # Every rollup bucket of the whole retention gets a sample, then the last hour gets one per second.
    finest = settings.store.rollups[0].step
    for t in np.arange(now - longest, now - 3600, finest):
        clock[0] = float(t)
        store.append(Sample("bench_metric", lab, 1.0, float(t)) for lab in labels)
    for t in np.arange(now - 3600, now, 1.0):
        clock[0] = float(t)
        store.append(Sample("bench_metric", lab, 1.0, float(t)) for lab in labels)
    tiers = {
        f"{'raw' if t.raw else f'{t.step:g} s'} for {t.retention / 3600:g} h": size / 2**20
        for t, size in store.memory_by_tier().items()
    }
    return {
        "series": SERIES,
        "store_mib": store.memory_bytes() / 2**20,
        "rss_mib": psutil.Process().memory_info().rss / 2**20,
        "baseline_rss_mib": baseline / 2**20,
        "tiers_mib": tiers,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
