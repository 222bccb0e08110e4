"""The store: tiers, retention, bounded memory, late samples, the series cap, staleness and threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tsdb.archive import Archive
from tsdb.metrics import STALE_AFTER, STALE_MARKER, MetricClash, MetricSpec, Sample, is_stale
from tsdb.store import SeriesLimitError, Store, Tier


def gauge(value, ts, name="load", **labels):
    return Sample(name, tuple(sorted(labels.items())), float(value), float(ts))


def test_raw_tier_returns_samples_in_range(store, clock):
    t0 = clock.now
    store.append([gauge(i, t0 + i) for i in range(10)])
    clock.advance(10)
    (sid,) = [s.id for s in store.series("load")]
    ts, val = store.read_raw(sid, t0 + 2, t0 + 5)
    assert ts.tolist() == [t0 + 2, t0 + 3, t0 + 4, t0 + 5]
    assert val.tolist() == [2, 3, 4, 5]


def test_raw_tier_forgets_past_its_retention(store, clock):
    t0 = clock.now
    store.append([gauge(1, t0)])
    store.append([gauge(2, t0 + 600)])
    clock.advance(1000)  # raw retention is 900 s: the first sample is out, the second in
    sid = store.series("load")[0].id
    ts, _ = store.read_raw(sid, 0, clock.now)
    assert ts.tolist() == [t0 + 600]


def test_rollups_keep_count_sum_min_max_last(store, clock):
    t0 = 60 * (int(clock.now) // 60)
    store.append([gauge(v, t0 + i * 10) for i, v in enumerate([4, 1, 9, 2, 7, 3])])
    store.append([gauge(5, t0 + 60)])
    clock.now = t0 + 61
    tier = store.tiers[1]
    r = store.read_rollup(tier, store.series("load")[0].id, t0, t0 + 120)
    assert r.start.tolist() == [t0, t0 + 60]
    assert r.count.tolist() == [6, 1]
    assert r.sum.tolist() == [26, 5]
    assert r.min.tolist() == [1, 5]
    assert r.max.tolist() == [9, 5]
    assert r.last.tolist() == [3, 5]


def test_rollups_outlive_the_raw_tier_and_expire_at_their_own(store, clock):
    t0 = 60 * (int(clock.now) // 60)
    store.append([gauge(1, t0)])
    tier = store.tiers[1]
    sid = store.series("load")[0].id
    clock.now = t0 + 3600
    assert store.read_raw(sid, 0, clock.now)[0].size == 0
    assert store.read_rollup(tier, sid, 0, clock.now).count.tolist() == [1]
    clock.now = t0 + 86400 + 60
    assert len(store.read_rollup(tier, sid, 0, clock.now)) == 0


def test_memory_stays_flat_over_many_retentions_once_flushed(clock):
    store = Store(Tier(0, 60), 1, [Tier(10, 600)], clock=clock)
    store.append([gauge(0, clock.now)])
    sizes = []
    for _ in range(50):  # 50 times the raw retention, 5 times the rollup retention
        store.append([gauge(i, clock.now + i) for i in range(60)])
        clock.advance(60)
        store.flush()
        sizes.append(store.memory_bytes())
    assert max(sizes[10:]) == min(sizes[10:])  # the head and its bookkeeping, whatever the uptime
    ts, val = store.read_raw(store.series("load")[0].id, 0, clock.now)
    assert len(ts) == 60 and val.tolist() == list(range(60))


def test_many_samples_a_second_into_one_series_are_all_kept(clock):
    store = Store(Tier(0, 900), 1, [Tier(60, 86400)], clock=clock)
    t0 = clock.now
    store.append([gauge(i, t0 + i / 1000) for i in range(25_000)])  # 1 ms apart
    clock.advance(30)
    ts, val = store.read_raw(0, 0, clock.now)
    assert len(ts) == 25_000 and val.tolist() == list(range(25_000))


def test_samples_older_than_the_newest_are_kept_as_history(store, clock):
    store.append([gauge(1, clock.now + 10)])
    kept = store.append([gauge(2, clock.now + 5), gauge(3, clock.now + 20)])
    assert kept == 2 and store.backfilled == 1
    clock.advance(30)
    _, val = store.read_raw(0, 0, clock.now)
    assert val.tolist() == [2, 1, 3]  # in time order
    store.flush()
    assert store.read_raw(0, 0, clock.now)[1].tolist() == [2, 1, 3]
    assert store.read_rollup(store.tiers[1], 0, 0, clock.now).count.sum() == 3


def test_samples_older_than_every_retention_are_refused_and_counted(store, clock):
    assert store.append([gauge(1, clock.now - 2 * 86400), gauge(2, clock.now)]) == 1
    assert store.too_old == 1


def test_a_new_series_past_the_cap_refuses_the_whole_batch(clock):
    store = Store(Tier(0, 900), 1, [], clock=clock, max_series=3)
    store.append([gauge(1, clock.now, core=str(i)) for i in range(2)])
    with pytest.raises(SeriesLimitError, match="holds 2 series and may hold 3.*add 2 more"):
        store.append([gauge(2, clock.now + 1, core=str(i)) for i in range(4)])
    assert store.series_count == 2 and store.appended == 2  # nothing of it was kept
    store.append([gauge(3, clock.now + 2, core="0"), gauge(3, clock.now + 2, core="2")])  # fits
    assert store.series_count == 3


def test_a_series_that_stops_leaves_latest_after_five_minutes(store, clock):
    store.append([gauge(1, clock.now, core="0"), gauge(2, clock.now, core="1")])
    clock.advance(200)
    store.append([gauge(3, clock.now, core="1")])
    assert {s.label_dict["core"] for s, _, _ in store.latest()} == {"0", "1"}
    clock.advance(STALE_AFTER - 199)
    assert [(s.label_dict["core"], v) for s, _, v in store.latest(["load"])] == [("1", 3.0)]


def test_a_series_silent_for_the_longest_retention_is_removed(tmp_path, clock):
    store = Store(Tier(0, 60), 1, [Tier(60, 600)], clock=clock, archive=Archive(tmp_path))
    store.append([gauge(1, clock.now, core="gone"), gauge(1, clock.now, core="kept")])
    store.flush()
    for _ in range(12):
        clock.advance(60)
        store.append([gauge(2, clock.now, core="kept")])
        store.flush()
    assert [s.label_dict["core"] for s in store.series("load")] == ["kept"]
    assert store.series_count == 1
    store.close()
    again = Store(Tier(0, 60), 1, [Tier(60, 600)], clock=clock, archive=Archive(tmp_path))
    assert [s.label_dict["core"] for s in again.series("load")] == ["kept"]  # gone from disk too
    again.close()


def test_infinite_values_are_refused_and_counted(store, clock):
    assert (
        store.append([gauge(float("inf"), clock.now), gauge(-float("inf"), clock.now), gauge(1, clock.now)])
        == 1
    )
    assert store.not_finite == 2


def test_nan_samples_and_staleness_markers_are_kept_raw_and_left_out_of_summaries(
    store,
    clock,
):
    t = clock.now - 30
    store.append(
        [gauge(1.0, t), gauge(float("nan"), t + 10), gauge(3.0, t + 20), gauge(STALE_MARKER, t + 25)]
    )
    ts, val = store.read_raw(0, 0, clock.now, numbers_only=False)
    assert ts.tolist() == [t, t + 10, t + 20, t + 25]
    assert np.isnan(val[1]) and not is_stale(val)[1] and is_stale(val)[3]
    assert store.read_raw(0, 0, clock.now)[1].tolist() == [1.0, 3.0]
    rollup = store.read_rollup(store.tiers[1], 0, 0, clock.now)
    assert rollup.count.sum() == 2 and rollup.sum.sum() == 4.0 and rollup.max.max() == 3.0
    assert store.latest() == []  # the marker ended the series
    store.append([gauge(float("nan"), clock.now)])
    assert len(store.latest()) == 1  # a NaN is a sample: the series is back


def test_unsorted_batch_across_series_is_stored_in_time_order(store, clock):
    t = clock.now
    store.append(
        [
            gauge(3, t + 3, core="1"),
            gauge(1, t + 1, core="0"),
            gauge(2, t + 2, core="1"),
            gauge(0, t, core="0"),
        ]
    )
    clock.advance(5)
    series = {s.label_dict["core"]: s.id for s in store.series("load")}
    assert store.read_raw(series["0"], 0, clock.now)[1].tolist() == [0, 1]
    assert store.read_raw(series["1"], 0, clock.now)[1].tolist() == [2, 3]


def test_a_metric_keeps_its_declared_type(store):
    store.declare(MetricSpec("jobs_total", "counter", "count", "Jobs run."), "jobs")
    with pytest.raises(MetricClash, match="declared by jobs as a counter .* declares it as a gauge"):
        store.declare(MetricSpec("jobs_total", "gauge", "count", "Jobs run."), "jobs")


def test_two_producers_cannot_declare_one_name_differently(store):
    store.declare(MetricSpec("queue_depth", "gauge", "count", "Jobs waiting.", "operations"), "worker")
    store.declare(MetricSpec("queue_depth", "gauge", "count", "Jobs waiting.", "operations"), "scrape")
    with pytest.raises(MetricClash, match="declared by worker"):
        store.declare(MetricSpec("queue_depth", "gauge", "count", "Jobs waiting.", "development"), "scrape")
    assert store.specs["queue_depth"].level == "operations"  # the first declaration stands


def test_many_series_grow_the_buffers(store, clock):
    store.append([gauge(i, clock.now, name=f"m{i}") for i in range(300)])
    clock.advance(1)
    assert store.series_count == 300
    assert store.read_raw(store.series("m299")[0].id, 0, clock.now)[1].tolist() == [299]


def test_readers_and_writers_in_threads_see_consistent_series(store, clock):
    errors = []

    def write(offset):
        for i in range(200):
            store.append([gauge(i, clock.now + i, writer=str(offset))])

    def read():
        for _ in range(200):
            for s in store.series("load"):
                ts, val = store.read_raw(s.id, 0, clock.now + 1000)
                if not np.array_equal(ts - clock.now, val):
                    errors.append((ts, val))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(3)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.appended == 600
