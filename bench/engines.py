"""Two designs for the store's history, measured on the same host-like data: `python -m bench.engines`.

- chunks: Pulseboard's store as built (head chunks in memory; delta-of-delta timestamps and
  XORed values, byte-shuffled and zstd-compressed, in SQLite, behind a decoded-chunk cache).
- duckdb: one DuckDB table (series, time in ms, value) appended from pandas in batches of 1,000
  rows, bucketed by SQL.

Data: 500 series shaped like node_exporter's (a third constant, a third slowly moving gauges,
a third counters), one reading every 15 s for a day (2.88 M samples); then one of those
series over 7 days (40,320 samples) for the query. Each figure is the median of three runs.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.history import Clock
from dashboard_app.settings import load_settings
from tsdb.aggregator import Aggregator
from tsdb.archive import Archive
from tsdb.metrics import Sample
from tsdb.store import build_store

NOW = 1_764_000_000.0
SERIES = 500
DAY = 86400
WEEK = 7 * DAY


def host_like(
    series: int, seconds: float, every: float = 15.0, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Return times and a (times, series) array of values shaped like a host's metrics."""
    rng = np.random.default_rng(seed)
    times = np.arange(NOW - seconds, NOW, every)
    kinds = np.arange(series) % 3
    values = np.empty((len(times), series))
    base = rng.uniform(0, 1e9, series).round()
    values[:, kinds == 0] = base[kinds == 0]  # constant: sizes, info, limits
    walk = rng.normal(0, 1, (len(times), int((kinds == 1).sum()))).cumsum(axis=0)
    values[:, kinds == 1] = (base[kinds == 1] / 1e6 + walk).round(2)  # gauges: temperatures, loads
    steps = rng.integers(0, 5000, (len(times), int((kinds == 2).sum())))
    values[:, kinds == 2] = base[kinds == 2] + steps.cumsum(axis=0)  # counters: bytes, packets
    return times, values


def chunks_design(times: np.ndarray, values: np.ndarray) -> dict:
    settings = load_settings("production", environ={})
    with tempfile.TemporaryDirectory() as data:
        clock = Clock(times[0])
        store = build_store(settings, clock, Archive(data))
        labels = [(("series", str(i)),) for i in range(values.shape[1])]
        rows = [
            [Sample("m", lab, float(v), float(t)) for lab, v in zip(labels, row)]
            for t, row in zip(times, values)
        ]
        t0 = time.perf_counter()
        for i, batch in enumerate(rows):
            store.append(batch)
            if i % 20 == 19:  # every 5 minutes of data
                clock.now = float(times[i])
                store.flush()
        store.seal_heads()  # what is on disk is the history
        store.flush()
        elapsed = time.perf_counter() - t0
        raw_bytes, raw_samples = store.archive.chunk_bytes(0.0)
        store.close()
    return {"insert_per_s": values.size / elapsed, "bytes_per_sample": raw_bytes / raw_samples}


def duckdb_design(times: np.ndarray, values: np.ndarray) -> dict:
    import duckdb

    with tempfile.TemporaryDirectory() as data:
        db = duckdb.connect(str(Path(data) / "store.duckdb"))
        db.execute("CREATE TABLE samples (series INTEGER, t BIGINT, value DOUBLE)")
        ms = np.round(times * 1000).astype(np.int64)
        n = values.shape[1]
        frame = pd.DataFrame(
            {
                "series": np.tile(np.arange(n, dtype=np.int32), len(times)),
                "t": np.repeat(ms, n),
                "value": values.ravel(),
            }
        )
        t0 = time.perf_counter()
        for i in range(0, len(frame), 1000):
            part = frame.iloc[i : i + 1000]  # noqa: F841 (read by DuckDB by name)
            db.execute("INSERT INTO samples SELECT * FROM part")
        db.execute("CHECKPOINT")
        elapsed = time.perf_counter() - t0
        used = db.execute(
            "SELECT sum(used_blocks) * any_value(block_size) FROM pragma_database_size()"
        ).fetchone()
        db.close()
        size = (Path(data) / "store.duckdb").stat().st_size
    return {"insert_per_s": len(frame) / elapsed, "bytes_per_sample": (used[0] or size) / len(frame)}


def chunks_query() -> dict:
    settings = load_settings("production", environ={})
    times, values = host_like(3, WEEK, seed=2)
    with tempfile.TemporaryDirectory() as data:
        clock = Clock(times[0])
        store = build_store(settings, clock, Archive(data))
        for i in range(0, len(times), 20):
            clock.now = float(times[min(i + 19, len(times) - 1)])
            store.append(
                [
                    Sample("m", (), float(v), float(t))
                    for t, v in zip(times[i : i + 20], values[i : i + 20, 1])
                ]
            )
            store.flush()
        clock.now = NOW
        store.close()
        store = build_store(settings, clock, Archive(data))
        agg = Aggregator(store)
        t0 = time.perf_counter()
        agg.query("m", NOW - WEEK, NOW, WEEK / 1000, "avg")
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(20):
            t0 = time.perf_counter()
            agg.query("m", NOW - WEEK, NOW, WEEK / 1000, "avg")
            warm.append(time.perf_counter() - t0)
        store.close()
    return {"cold_ms": cold * 1000, "warm_ms": statistics.median(warm) * 1000}


def duckdb_query() -> dict:
    import duckdb

    times, values = host_like(SERIES, WEEK, seed=3)
    with tempfile.TemporaryDirectory() as data:
        path = str(Path(data) / "store.duckdb")
        db = duckdb.connect(path)
        n = values.shape[1]
        frame = pd.DataFrame(  # noqa: F841 (read by DuckDB by name)
            {
                "series": np.tile(np.arange(n, dtype=np.int32), len(times)),
                "t": np.repeat(np.round(times * 1000).astype(np.int64), n),
                "value": values.ravel(),
            }
        )
        db.execute("CREATE TABLE samples AS SELECT * FROM frame")
        db.close()
        db = duckdb.connect(path)
        sql = (
            "SELECT t // ? AS bucket, avg(value) FROM samples WHERE series = 1 AND t >= ? AND t <= ? "
            "GROUP BY bucket ORDER BY bucket"
        )
        args = [int(WEEK / 1000 * 1000), int((NOW - WEEK) * 1000), int(NOW * 1000)]
        t0 = time.perf_counter()
        db.execute(sql, args).fetchnumpy()
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(20):
            t0 = time.perf_counter()
            db.execute(sql, args).fetchnumpy()
            warm.append(time.perf_counter() - t0)
        db.close()
    return {"cold_ms": cold * 1000, "warm_ms": statistics.median(warm) * 1000}


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    times, values = host_like(SERIES, DAY)
    out = {
        "chunks": median_of([chunks_design(times, values) for _ in range(3)])
        | median_of([chunks_query() for _ in range(3)]),
        "duckdb": median_of([duckdb_design(times, values) for _ in range(3)])
        | median_of([duckdb_query() for _ in range(3)]),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
