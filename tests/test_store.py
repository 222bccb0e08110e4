"""The store: tiers, retention, bounded memory, ordering and threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from collectors.metrics import MetricSpec, Sample
from collectors.store import Store, Tier


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


def test_memory_is_bounded_by_retention_not_uptime(clock):
    store = Store(Tier(0, 60), 1, [Tier(10, 600)], clock=clock)
    store.append([gauge(0, clock.now)])
    before = store.memory_bytes()
    for _ in range(50):  # 50 times the raw retention, 5 times the rollup retention
        batch = [gauge(i, clock.now + i) for i in range(60)]
        store.append(batch)
        clock.advance(60)
    assert store.memory_bytes() == before
    ts, val = store.read_raw(store.series("load")[0].id, 0, clock.now)
    assert len(ts) == 60 and np.all(np.diff(ts) > 0)


def test_a_batch_larger_than_the_ring_keeps_its_newest_samples(clock):
    store = Store(Tier(0, 10), 1, [], clock=clock)
    store.append([gauge(i, clock.now + i) for i in range(25)])
    clock.advance(25)
    _, val = store.read_raw(0, 0, clock.now)
    assert val.tolist() == list(range(15, 25))


def test_out_of_order_samples_are_refused_and_counted(store, clock):
    store.append([gauge(1, clock.now + 10)])
    kept = store.append([gauge(2, clock.now + 5), gauge(3, clock.now + 20)])
    assert kept == 1
    assert store.out_of_order == 1
    clock.advance(30)
    _, val = store.read_raw(0, 0, clock.now)
    assert val.tolist() == [1, 3]


def test_not_finite_values_are_refused_and_counted(store, clock):
    assert (
        store.append([gauge(float("nan"), clock.now), gauge(float("inf"), clock.now), gauge(1, clock.now)])
        == 1
    )
    assert store.not_finite == 2


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
    store.declare(MetricSpec("jobs_total", "counter", "count", "Jobs run."))
    with pytest.raises(ValueError, match="is a counter, not a gauge"):
        store.declare(MetricSpec("jobs_total", "gauge", "count", "Jobs run."))


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
