"""History on disk: restarts, late history, every sample counted once, damage, and the previous format."""

from __future__ import annotations

import sqlite3

import diskcache
import numpy as np
import pytest

from dashboard_app.sources.source import EmbeddedSource
from query.evaluate import Query
from tests.test_store import gauge
from tsdb.aggregator import Aggregator
from tsdb.archive import FILE, Archive
from tsdb.metrics import STALE_MARKER, MetricSpec, is_stale
from tsdb.persistence import convert_previous
from tsdb.store import CHECKPOINT_EVERY, HEAD_CHUNK, Store, Tier

PRODUCTION = (Tier(0, 3600), 1, [Tier(60, 7 * 86400), Tier(3600, 30 * 86400)])
DEVELOPMENT = (Tier(0, 900), 1, [Tier(60, 86400)])


def open_store(path, clock, tiers=DEVELOPMENT) -> Store:
    raw, resolution, rollups = tiers
    return Store(raw, resolution, rollups, clock=clock, archive=Archive(path))


def total(frame) -> float:
    return float(np.nansum(frame.to_numpy()))


def test_flushed_samples_come_back_after_a_restart(tmp_path, clock):
    store = open_store(tmp_path, clock)
    t0 = clock.now
    store.append([gauge(i, t0 + i, core=str(i % 2)) for i in range(20)])
    store.flush()
    store.append([gauge(99, t0 + 30, core="0")])
    store.flush()
    store.archive.close()  # as a kill would leave it: no last flush

    clock.advance(40)
    again = open_store(tmp_path, clock)
    core0 = next(s for s in again.series("load") if s.label_dict == {"core": "0"})
    ts, val = again.read_raw(core0.id, 0, clock.now)
    assert val.tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 99]
    rollup = again.read_rollup(again.tiers[1], core0.id, 0, clock.now)
    assert rollup.count.sum() == 11
    # New samples after the restart continue the same series in order.
    assert again.append([gauge(100, clock.now, core="0")]) == 1
    again.close()


def test_sealed_chunks_and_the_head_both_come_back_counted_once(tmp_path, clock):
    store = open_store(tmp_path, clock)
    n = 5 * HEAD_CHUNK + 17  # five sealed chunks and a head
    t0 = clock.now
    store.append([gauge(i, t0 + i * 0.5) for i in range(n)])
    store.flush()
    store.archive.close()
    clock.advance(n)
    again = open_store(tmp_path, clock)
    ts, val = again.read_raw(0, 0, clock.now)
    assert val.tolist() == list(range(n))
    assert again.read_rollup(again.tiers[1], 0, 0, clock.now).count.sum() == n
    again.flush()  # the head, written again, is still there once
    again.close()
    third = open_store(tmp_path, clock)
    assert len(third.read_raw(0, 0, clock.now)[0]) == n
    assert third.read_rollup(third.tiers[1], 0, 0, clock.now).count.sum() == n
    third.close()


@pytest.mark.parametrize("fraction", [0.0, 0.0004, 0.0006])  # times between milliseconds, both ways
def test_samples_sharing_a_time_across_a_sealed_chunk_all_come_back(tmp_path, clock, fraction):
    """Batches of 50 pushed increments at one time each: the 120-sample head seals mid-batch."""
    store = open_store(tmp_path, clock)
    t0, n = clock.now + fraction, 0
    for batch in range(41):
        store.append([gauge(n + i + 1, t0 + batch) for i in range(50)])
        n += 50
        store.flush()  # as a push does before it answers
    store.archive.close()  # killed: no last flush
    clock.advance(60)
    again = open_store(tmp_path, clock)
    ts, val = again.read_raw(0, 0, clock.now)
    assert val.tolist() == list(range(1, n + 1))
    assert again.latest()[0][2] == n
    again.close()


def test_a_hundred_samples_a_second_for_a_minute_are_all_there_at_step_1_and_60(tmp_path, clock):
    store = open_store(tmp_path, clock, PRODUCTION)
    t0 = np.floor(clock.now / 60) * 60
    for second in range(60):
        store.append([gauge(1, t0 + second + k / 100, name="hits") for k in range(100)])
        if second % 5 == 4:
            store.flush()
    store.close()
    clock.now = t0 + 120
    again = open_store(tmp_path, clock, PRODUCTION)
    agg = Aggregator(again, max_points=11_000)
    at_1 = agg.query("hits", t0, t0 + 60, 1, "count")
    at_60 = agg.query("hits", t0, t0 + 60, 60, "count")
    assert total(at_1) == 6000 and len(at_1) == 60
    assert total(at_60) == 6000
    assert at_1.iloc[:, 0].tolist() == [100.0] * 60
    again.close()


def test_seven_days_of_history_pushed_late_are_queryable_at_each_step(tmp_path, clock):
    store = open_store(tmp_path, clock, PRODUCTION)
    now = clock.now
    store.append([gauge(5, now, name="temp")])  # the series is live; its history arrives afterwards
    times = np.arange(now - 7 * 86400 + 60, now, 15.0)
    for part in np.array_split(times, 40):
        store.append([gauge(2, t, name="temp") for t in part])
        store.flush()
    store.close()
    again = open_store(tmp_path, clock, PRODUCTION)
    agg = Aggregator(again, max_points=11_000)
    expected = len(times) + 1
    for step in (60, 300, 3600, 6 * 3600):
        frame = agg.query("temp", now - 7 * 86400, now, step, "count")
        assert total(frame) == expected, step
    last_hour = agg.query("temp", now - 3600, now, 15, "avg")
    assert set(last_hour.iloc[:, 0].dropna()) <= {2.0, 5.0} and len(last_hour) >= 240
    week = agg.query("temp", now - 7 * 86400, now, 3600, "max")
    assert week.iloc[:, 0].max() == 5.0 and week.iloc[0, 0] == 2.0
    again.close()


def test_a_count_across_the_edge_of_the_minute_tier_counts_each_sample_once(tmp_path, clock):
    store = open_store(tmp_path, clock, PRODUCTION)
    now = clock.now
    times = np.arange(now - 8 * 86400, now, 8 * 86400 / 120_000)
    store.append([gauge(1, t, name="events") for t in times])
    store.flush()
    agg = Aggregator(store, max_points=11_000)
    edge = now - 7 * 86400
    for start, end in ((edge - 86400, edge + 86400), (now - 8 * 86400, now)):
        inside = int(((times >= np.floor(start / 3600) * 3600) & (times <= end)).sum())
        for step in (60, 3600):
            counted = total(agg.query("events", start, end, step, "count"))
            # The hour tier answers whole hours before the edge: the first hour may start before `start`.
            assert abs(counted - inside) <= 3600 / (8 * 86400 / 120_000) + 1, (start, step)
            assert counted <= len(times)
    assert total(agg.query("events", now - 8 * 86400, now, 3600, "count")) == len(times)
    store.close()


def test_history_past_retention_is_gone_after_a_long_stop(tmp_path, clock):
    store = open_store(tmp_path, clock)
    store.append([gauge(7, clock.now)])
    store.close()
    clock.advance(2 * 86400)
    again = open_store(tmp_path, clock)
    assert again.read_raw(0, 0, clock.now)[0].size == 0
    assert len(again.read_rollup(again.tiers[1], 0, 0, clock.now)) == 0
    again.flush()  # the first upkeep removes the series that has been silent past every retention
    assert again.series_count == 0
    again.close()


def test_changed_retention_keeps_what_still_fits(tmp_path, clock):
    store = open_store(tmp_path, clock)
    store.append([gauge(5, clock.now)])
    store.close()
    clock.advance(1)
    smaller = open_store(tmp_path, clock, (Tier(0, 300), 1, [Tier(60, 3600)]))
    assert smaller.series("load")
    assert len(smaller.read_rollup(smaller.tiers[1], 0, 0, clock.now)) == 1
    assert smaller.read_raw(0, 0, clock.now)[1].tolist() == [5]
    smaller.close()


def test_a_damaged_chunk_is_set_aside_and_reported_and_the_rest_served(tmp_path, clock):
    store = open_store(tmp_path, clock)
    t0 = clock.now
    store.append([gauge(i, t0 + i) for i in range(3 * HEAD_CHUNK)])
    store.close()
    db = sqlite3.connect(tmp_path / FILE)
    [(first,)] = db.execute("SELECT min(id) FROM chunks WHERE step = 0").fetchall()
    db.execute("UPDATE chunks SET data = substr(data, 1, 20) || zeroblob(40) WHERE id = ?", (first,))
    db.commit()
    db.close()
    clock.advance(3 * HEAD_CHUNK)
    again = open_store(tmp_path, clock)
    _, val = again.read_raw(0, 0, clock.now)
    assert val.tolist() == list(range(HEAD_CHUNK, 3 * HEAD_CHUNK))  # the other chunks
    [problem] = again.archive.problems
    assert "damaged" in problem and "set aside" in problem
    assert again.read_rollup(again.tiers[1], 0, 0, clock.now).count.sum() == 3 * HEAD_CHUNK  # rollups intact
    again.close()
    kept = sqlite3.connect(tmp_path / FILE).execute("SELECT count(*) FROM damaged").fetchone()[0]
    assert kept == 1  # kept for a person to look at


def test_an_unreadable_file_is_moved_aside_and_a_fresh_one_started(tmp_path, clock):
    store = open_store(tmp_path / "tsdb", clock)
    store.append([gauge(1, clock.now)])
    store.close()
    for leftover in (tmp_path / "tsdb").glob(FILE + "-*"):
        leftover.unlink()
    (tmp_path / "tsdb" / FILE).write_bytes(b"this is not a database" * 100)
    again = open_store(tmp_path / "tsdb", clock)
    assert "moved to" in again.archive.problems[0]
    assert list(tmp_path.glob("tsdb.corrupt-*"))
    assert again.append([gauge(2, clock.now + 1)]) == 1
    again.close()


def previous_format(directory, clock) -> None:
    """Write a data directory as the previous version did: a snapshot of ring buffers, then a chunk."""
    empty = np.iinfo(np.int64).min
    capacity, slots = 900, 1440
    raw_ts = np.full((2, capacity), np.nan)
    raw_val = np.full((2, capacity), np.nan)
    raw_ts[0, :10] = clock.now - 100 + np.arange(10)
    raw_val[0, :10] = np.arange(10)
    rollup = {
        "tier": Tier(60, 86400),
        **{f: np.zeros((2, slots)) for f in ("sum", "min", "max", "last", "increase")},
        "count": np.zeros((2, slots), dtype=np.int64),
        "bucket": np.full((2, slots), empty, dtype=np.int64),
    }
    hours_ago = int(clock.now // 60) - 300  # a bucket five hours back, older than the raw ring
    for row, bucket, count in ((0, hours_ago, 30), (0, int((clock.now - 100) // 60), 10), (1, hours_ago, 4)):
        rollup["bucket"][row, bucket % slots] = bucket
        rollup["count"][row, bucket % slots] = count
        rollup["sum"][row, bucket % slots] = count * 2.0
    state = {
        "series": [("load", (("core", "0"),)), ("load", (("core", "1"),))],
        "specs": [MetricSpec("load", "gauge", "ratio", "Load.")],
        "capacity": capacity,
        "raw_ts": raw_ts,
        "raw_val": raw_val,
        "written": np.array([10, 0]),
        "newest": np.array([clock.now - 91, clock.now - 18000.0]),
        "last_value": np.array([9.0, 2.0]),
        "rollups": [rollup],
    }
    cache = diskcache.Cache(str(directory), eviction_policy="none", size_limit=2**40)
    cache.set("snapshot", state)
    after = (
        [("load", (("core", "0"),))],
        np.array([0, 0]),
        np.array([clock.now - 50, clock.now - 49]),
        np.array([20.0, 21.0]),
    )
    cache.set("chunk:000000000001", after)
    cache.close()


def test_a_data_directory_of_the_previous_format_is_converted_once_with_nothing_lost(tmp_path, clock):
    previous_format(tmp_path / "store", clock)
    store = open_store(tmp_path / "tsdb", clock)
    convert_previous(tmp_path, store)
    assert not (tmp_path / "store").exists() and list(tmp_path.glob("store.previous-format-*"))
    store.close()
    clock.advance(1)
    again = open_store(tmp_path / "tsdb", clock)
    assert convert_previous(tmp_path, again) is None  # once
    core = {s.label_dict["core"]: s.id for s in again.series("load")}
    assert again.read_raw(core["0"], 0, clock.now)[1].tolist() == [*range(10), 20.0, 21.0]
    minutes = again.read_rollup(again.tiers[1], core["0"], 0, clock.now)
    assert minutes.count.sum() == 30 + 10 + 2  # the old buckets, and the chunk after the snapshot
    assert again.read_rollup(again.tiers[1], core["1"], 0, clock.now).count.sum() == 4
    assert again.specs["load"].unit == "ratio"
    again.close()


@pytest.mark.parametrize("flushes", [1, 40])
def test_rollups_merged_on_disk_answer_as_the_fragments_did(tmp_path, clock, flushes):
    store = open_store(tmp_path, clock, PRODUCTION)
    t0 = clock.now
    values = np.random.default_rng(7).normal(50, 10, 40 * HEAD_CHUNK)
    for chunk in np.array_split(np.arange(len(values)), flushes):
        store.append([gauge(values[i], t0 + i * 15, name="cpu") for i in chunk])
        clock.now = t0 + chunk[-1] * 15
        store.flush()
    agg = Aggregator(store, max_points=11_000)
    frame = agg.query("cpu", t0, clock.now, 3600, "max")
    assert frame.iloc[:, 0].max() == values.max()
    assert total(agg.query("cpu", t0, clock.now, 3600, "count")) == len(values)
    rows = store.archive.db.execute("SELECT count(*) FROM chunks WHERE step = 60").fetchone()[0]
    assert rows < 40 / 2  # fragments were merged
    store.close()


def test_raw_chunks_merged_on_disk_keep_every_sample_in_order(tmp_path, clock):
    store = open_store(tmp_path, clock, PRODUCTION)
    t0 = clock.now
    n = 25 * HEAD_CHUNK
    for second in range(n):
        store.append([gauge(second % 13, t0 + second, name="cpu")])
        if second % 5 == 4:
            clock.now = t0 + second
            store.flush()
    store.append([gauge(99, t0 + 100.5, name="cpu")])  # late, in the middle of the history
    store.flush()
    rows = store.archive.db.execute("SELECT count(*), sum(samples) FROM chunks WHERE step = 0").fetchone()
    assert rows[0] < 25 / 2 and rows[1] >= 24 * HEAD_CHUNK  # merged, the head not yet
    store.close()
    again = open_store(tmp_path, clock, PRODUCTION)
    ts, val = again.read_raw(0, 0, clock.now)
    assert len(ts) == n + 1 and (np.diff(ts) >= 0).all()
    assert val[101] == 99 and val[:101].tolist() == [s % 13 for s in range(101)]
    again.close()


def test_nan_samples_and_staleness_markers_survive_chunks_the_log_and_a_restart(tmp_path, clock):
    store = open_store(tmp_path, clock)
    t0 = clock.now
    values = [float(i) for i in range(HEAD_CHUNK + 10)]
    values[5], values[HEAD_CHUNK + 3] = float("nan"), STALE_MARKER  # one in a sealed chunk, one in the head
    store.append([gauge(v, t0 + i) for i, v in enumerate(values)])
    store.flush()
    store.archive.close()
    clock.advance(len(values))
    again = open_store(tmp_path, clock)
    _, val = again.read_raw(0, 0, clock.now, numbers_only=False)
    assert len(val) == len(values)
    assert np.isnan(val[5]) and not is_stale(val)[5]
    assert is_stale(val).tolist().index(True) == HEAD_CHUNK + 3
    assert again.read_rollup(again.tiers[1], 0, 0, clock.now).count.sum() == len(values) - 2
    again.close()


def test_the_log_is_checkpointed_so_a_start_replays_minutes_not_the_hour_a_slow_series_holds(tmp_path, clock):
    store = open_store(tmp_path, clock, PRODUCTION)
    for second in range(1800):  # half an hour: a fast series every second, a slow one every ten minutes
        clock.now += 1
        store.append([gauge(second, clock.now, name="fast")], durable=True)  # one log record a push
        if second % 600 == 0:
            store.append([gauge(second, clock.now, name="slow")], durable=True)
        if second % 5 == 4:
            store.flush()
    records = [seq for seq, *_ in store.archive.wal()]
    assert len(records) <= CHECKPOINT_EVERY * 1.3  # not the 1,800 the slow series' open head would keep
    store.archive.close()  # killed: no last flush
    again = open_store(tmp_path, clock, PRODUCTION)
    fast, slow = again.series("fast")[0], again.series("slow")[0]
    assert again.read_raw(fast.id, 0, clock.now)[1].tolist() == [float(s) for s in range(1800)]
    assert again.read_raw(slow.id, 0, clock.now)[1].tolist() == [0.0, 600.0, 1200.0]
    again.close()


def test_long_windows_read_the_rollups_exact_sums_counts_lows_and_highs(tmp_path, clock):
    """A week of one-second samples: avg, sum, count, min and max over days come out exact from the
    minute and hour rollups, as PromQL over every raw sample would give them."""
    store = open_store(tmp_path, clock, PRODUCTION)
    now = np.floor(clock.now / 3600) * 3600
    clock.now = now
    times = np.arange(now - 3 * 86400, now, 1.0)
    values = 50 + 40 * np.sin(times / 5000.0) + (times % 7)
    values[len(values) // 2] = 1000.0  # one second's spike, two days into the past
    for part in np.array_split(np.arange(len(times)), 60):
        store.append([gauge(float(values[i]), float(times[i]), name="temp") for i in part])
        store.flush()
    source = EmbeddedSource(store)
    expected = {
        "avg_over_time": values.mean(),
        "sum_over_time": values.sum(),
        "count_over_time": float(len(values)),
        "min_over_time": values.min(),
        "max_over_time": 1000.0,
    }
    for function, value in expected.items():
        [(info, found)] = source.instant(f"{function}(temp[3d])", now - 0.001)
        assert found == pytest.approx(value, rel=1e-9), function
    # A 3-day panel at 1-hour steps: each point is its hour's exact mean, the spike's hour included.
    frame = source.evaluate(Query("max_over_time(temp[1h])", now - 3 * 86400 + 3600, now - 0.001, 3600))
    assert frame.iloc[:, 0].max() == 1000.0 and len(frame) == 71
    store.close()
