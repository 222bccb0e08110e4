"""The analysis endpoints over real HTTP: evidence in recommendations, trends with forecasts, anomalies."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tsdb.metrics import Sample

CPU = "pulseboard_system_cpu_usage_ratio"
DISK = "pulseboard_system_disk_usage_ratio"


def slow_and_busy(pb, now):
    """Half an hour of an application that is slow while the CPU is pegged."""
    store = pb.runtime.store
    start = now - 1800
    store.append(Sample(CPU, (), 0.95, start + t) for t in range(0, 1800, 10))
    store.append(Sample(DISK, (("mount", "/"),), 0.5 + 0.2 * t / 1800, start + t) for t in range(0, 1800, 10))
    samples = [
        {
            "name": "pulseboard_app_request_duration_seconds",
            "labels": {"endpoint": "/api/cart"},
            "value": 1.4,
            "timestamp": start + t,
        }
        for t in range(0, 1800, 2)
    ]
    assert pb.call("POST", "/metrics/custom/record", {"samples": samples}).ok


def test_performance_quotes_its_evidence(pulseboard):
    now = time.time()
    slow_and_busy(pulseboard, now)
    body = pulseboard.call("GET", "/analysis/performance", params={"start": now - 1800, "end": now}).json()
    assert body["status"]["latency_p95_seconds"] == "crit" and body["status"]["cpu"] == "crit"
    assert body["current"]["latency_seconds"]["p95"] == pytest.approx(1.4)
    [advice, *_] = body["recommendations"]
    assert "p95 latency 1.4 s" in advice and "CPU peaked at 95%" in advice and "CPU-bound" in advice


def test_trends_forecast_and_time_to_full(pulseboard):
    now = time.time()
    slow_and_busy(pulseboard, now)
    params = {"query": DISK, "start": now - 1800, "end": now, "step": 60, "horizon": 3600, "threshold": 1.0}
    [series] = pulseboard.call("GET", "/analysis/trends", params=params).json()["series"]
    assert series["labels"] == {"mount": "/"}
    assert abs(series["trend"]["slope_per_day"] - 0.2 * 48) < 0.5  # 20 points per half hour
    assert series["forecast"]["method"] == "linear" and "two days" in series["forecast"]["reason"]
    eta = series["time_to_threshold"]["seconds"]
    assert 2400 < eta < 2900  # from 70 % at 0.4 points a minute: about 45 minutes
    assert len(series["forecast"]["points"]) == 60


def test_anomalies_are_found_by_the_api(pulseboard):
    now = time.time()
    noise = np.random.default_rng(5).normal(0, 0.01, 60)  # ten minutes every 10 s, in the raw tier
    values = [0.9 if i == 30 else 0.3 + noise[i] for i in range(60)]
    # Collected between the steps, as a collector's ticks fall: each step's window holds one sample.
    pulseboard.runtime.store.append(Sample(CPU, (), v, now - 603 + 10 * i) for i, v in enumerate(values))
    params = {"query": CPU, "start": now - 600, "end": now, "step": 10}
    [series] = pulseboard.call("GET", "/analysis/anomalies", params=params).json()["series"]
    assert [round(v, 2) for _, v in series["points"]] == [0.9]


def test_analysis_rejects_bad_parameters(pulseboard):
    missing = pulseboard.call("GET", "/analysis/trends")
    assert missing.status_code == 400 and missing.json()["field"] == "query"
    bad = pulseboard.call("GET", "/analysis/trends", params={"query": CPU, "step": "fast"})
    assert bad.status_code == 400 and bad.json()["field"] == "step"
    backwards = pulseboard.call("GET", "/analysis/performance", params={"start": 2000, "end": 1000})
    assert backwards.status_code == 400 and backwards.json()["field"] == "end"
