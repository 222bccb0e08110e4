"""A Pulseboard process filling its store, then printing what it holds: `python -m bench.fill KIND N`.

KIND ``production``: N series at production retention with every tier full (30 days of hours,
7 days of minutes, the last hour of seconds). KIND ``seconds``: N series with an hour of
seconds each. The store writes its archive in a temporary directory and flushes every 5
simulated seconds, as a running Pulseboard does. Run by the benchmarks in a process of its
own, so the figure is the whole process: Python, Dash, pandas and the store.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import tempfile

import numpy as np
import psutil

from dashboard_app.server import create_app  # noqa: F401  (a running Pulseboard has the pages loaded)
from dashboard_app.settings import load_settings
from tsdb.archive import Archive
from tsdb.metrics import Sample
from tsdb.store import build_store

START = 1_764_000_000.0


def rss() -> int:
    """Resident memory, after handing freed heap pages back to the system."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    return psutil.Process().memory_info().rss


def fill(kind: str, series: int) -> dict:
    settings = load_settings(
        "production", environ={k: v for k, v in os.environ.items() if k.startswith("PULSEBOARD_STORE")}
    )
    baseline = rss()  # Python, Dash, pandas and plotly loaded, no store
    clock = [START]
    with tempfile.TemporaryDirectory() as data_dir:
        archive = Archive(data_dir, settings.store.cache_size)
        store = build_store(settings, lambda: clock[0], archive)
        labels = [(("series", str(i)),) for i in range(series)]
        if kind == "production":
            longest = max(t.retention for t in settings.store.rollups)
            week = settings.store.rollups[0].retention
            spacing = [(START - longest, START - week, 3600.0), (START - week, START - 3600, 60.0)]
        else:
            spacing = []
        spacing.append((START - 3600, START, 1.0))
        samples = 0
        for lo, hi, step in spacing:
            for t in np.arange(lo, hi, step):
                clock[0] = float(t)
                store.append([Sample("bench_metric", lab, 1.0 + (t % 7), float(t)) for lab in labels])
                samples += series
                if int(t) % (3600 if step > 1 else 5) == 0:  # history fills faster than it happened
                    store.flush()
        clock[0] = START
        store.flush()
        parts = store.memory_parts()
        grown = rss() - baseline
        out = {
            "kind": kind,
            "series": series,
            "samples": samples,
            "store_mib": store.memory_bytes() / 2**20,
            "parts_mib": {k: round(v / 2**20, 2) for k, v in parts.items()},
            "rss_mib": rss() / 2**20,
            "baseline_rss_mib": baseline / 2**20,
            "rss_growth_without_cache_mib": (grown - parts["read cache"]) / 2**20,
            "disk_mib": archive.disk_bytes() / 2**20,
        }
        store.close()
    return out


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "production"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    print(json.dumps(fill(kind, count)))
