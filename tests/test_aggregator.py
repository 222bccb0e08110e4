"""Queries: selectors, aggregations, rates, tiers and the point cap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsdb.aggregator import AGGREGATIONS, Aggregator, QueryError
from tsdb.metrics import Sample
from tsdb.selector import SelectorError, parse_selector
from tsdb.store import Store, Tier


def fill(store, name, values, start, every=1.0, **labels):
    store.append(
        Sample(name, tuple(sorted(labels.items())), float(v), start + i * every) for i, v in enumerate(values)
    )


@pytest.fixture
def t0(clock):
    clock.now = 3600.0 * 490_000  # on an hour boundary, so buckets line up with the data
    return clock.now


@pytest.fixture
def cores(store, clock, t0):
    for core in range(4):
        fill(
            store,
            "cpu",
            [core * 10 + i % 10 for i in range(120)],
            t0,
            core=str(core),
            host="a" if core < 2 else "b",
        )
    clock.now = t0 + 120
    return Aggregator(store)


@pytest.mark.parametrize(
    "selector, expected",
    [
        ("cpu", ["0", "1", "2", "3"]),
        ('cpu{core="2"}', ["2"]),
        ('cpu{core!="2"}', ["0", "1", "3"]),
        ('cpu{core=~"1|3"}', ["1", "3"]),
        ('cpu{core!~"1|3"}', ["0", "2"]),
        ('cpu{host="a", core=~"[01]"}', ["0", "1"]),
        ('cpu{core=~"1"}', ["1"]),  # anchored: does not match "10" and friends
        ('cpu{missing=""}', ["0", "1", "2", "3"]),  # an absent label equals the empty string
        ("nothing", []),
    ],
)
def test_label_matchers_select_series(cores, t0, selector, expected):
    frame = cores.query(selector, t0, t0 + 120, 60, legend="{core}")
    assert sorted(frame.columns) == expected


@pytest.mark.parametrize(
    "bad, message",
    [
        ("9cpu", "metric name"),
        ('cpu{core="1"', "closing"),
        ("cpu{core=1}", "expected"),
        ('cpu{core=~"("}', "regular expression"),
        ('cpu{core=="1"}', "expected"),
    ],
)
def test_bad_selectors_say_what_is_wrong(bad, message):
    with pytest.raises(SelectorError, match=message):
        parse_selector(bad)


def test_selector_round_trips_to_text():
    assert str(parse_selector('cpu{ core = "1" ,host=~"a.*"}')) == 'cpu{core="1", host=~"a.*"}'


@pytest.mark.parametrize(
    "agg, expected",
    [
        ("avg", 4.5),
        ("min", 0),
        ("max", 9),
        ("sum", 45 * 6),
        ("last", 9),
        ("count", 60),
        ("p50", 4.5),
        ("p95", np.percentile(np.tile(np.arange(10), 6), 95)),
        ("p99", np.percentile(np.tile(np.arange(10), 6), 99)),
    ],
)
def test_aggregations_over_a_minute_of_raw_samples(cores, t0, agg, expected):
    frame = cores.query('cpu{core="0"}', t0, t0 + 119, 60, agg)
    assert frame.iloc[:, 0].tolist() == pytest.approx([expected, expected])


def test_every_aggregation_is_tested():
    tested = {"avg", "min", "max", "sum", "last", "count", "p50", "p95", "p99", "rate"}
    assert tested == set(AGGREGATIONS)


def test_frame_has_a_utc_time_index_and_a_column_per_series(cores, t0):
    frame = cores.query("cpu", t0, t0 + 119, 30)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp(t0, unit="s", tz="UTC")
    assert len(frame.columns) == 4 and len(frame) == 4


def test_rate_of_a_counter_survives_a_reset(store, clock, t0):
    values = [0, 10, 20, 30, 5, 15, 25]  # reset to zero between 30 and 5
    fill(store, "requests_total", values, t0, every=10)
    clock.now = t0 + 70
    frame = Aggregator(store).query("requests_total", t0, t0 + 70, 10, "rate")
    assert frame.iloc[:, 0].tolist() == pytest.approx([1.0, 1.0, 1.0, 0.5, 1.0, 1.0])


def test_rollup_rate_counts_a_reset_inside_a_bucket(store, clock, t0):
    fill(store, "requests_total", [0, 10, 20, 30, 5, 15, 25], t0, every=10)
    clock.now = t0 + 1000  # raw samples gone: the minute tier answers
    frame = Aggregator(store).query("requests_total", t0, t0 + 120, 60, "rate")
    assert frame.iloc[:, 0].tolist() == pytest.approx([(10 + 10 + 10 + 5 + 10) / 60, 10 / 60])


def test_rate_from_the_minute_tier_matches_the_raw_rate(store, clock, t0):
    fill(store, "bytes_total", [i * 100 for i in range(3600)], t0)
    clock.now = t0 + 3600 + 1000  # raw retention (900 s) no longer covers the start
    frame = Aggregator(store).query("bytes_total", t0, t0 + 3599, 600, "rate")
    assert frame.iloc[:, 0].to_numpy() == pytest.approx(np.full(len(frame), 100.0), rel=0.01)


def test_coarse_steps_read_the_rollup_tier_and_give_exact_avg_min_max(store, clock, t0):
    fill(store, "temp", np.arange(600), t0)
    clock.now = t0 + 600
    agg = Aggregator(store)
    assert [seg[0].step for seg in agg.plan(t0, t0 + 600, 300, "avg")] == [60]
    assert [seg[0].step for seg in agg.plan(t0, t0 + 600, 5, "avg")] == [0]
    assert [seg[0].step for seg in agg.plan(t0, t0 + 600, 300, "p95")] == [0]  # quantiles want raw samples
    frame = agg.query("temp", t0, t0 + 599, 300, "avg")
    assert frame.iloc[:, 0].tolist() == pytest.approx([149.5, 449.5])
    assert agg.query("temp", t0, t0 + 599, 300, "max").iloc[:, 0].tolist() == [299, 599]
    assert agg.query("temp", t0, t0 + 599, 300, "count").iloc[:, 0].tolist() == [300, 300]


def test_old_ranges_fall_back_to_the_tier_that_still_holds_them(store, clock, t0):
    fill(store, "temp", np.arange(600), t0)
    clock.now = t0 + 5000
    frame = Aggregator(store).query("temp", t0, t0 + 599, 1, "avg")
    assert len(frame) == 10  # one point per minute: the raw samples are gone
    assert frame.attrs["step"] == 60


def test_a_range_longer_than_raw_retention_joins_minutes_and_raw_samples(store, clock, t0):
    fill(store, "temp", np.arange(1800), t0)  # 30 min of 1 s samples; raw keeps the last 15 min
    clock.now = t0 + 1800
    frame = Aggregator(store).query("temp", t0, clock.now, 10, "avg")
    times = (frame.index - frame.index[0]).total_seconds()
    old, recent = times[times < 900], times[times >= 900]
    assert len(old) == 15 and set(np.diff(old)) == {60}  # the older half from the minute tier
    assert set(np.diff(recent)) == {10}  # the recent half at the asked step
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    assert frame.iloc[0, 0] == pytest.approx(29.5) and frame.iloc[-1, 0] == pytest.approx(1794.5)


def test_a_window_as_long_as_raw_retention_still_reads_raw(store, clock, t0):
    fill(store, "temp", np.arange(900), t0)
    clock.now = t0 + 900
    frame = Aggregator(store).query("temp", clock.now - 900, clock.now, 5, "avg")
    assert len(frame) == 180


def test_point_cap_downsamples_keeping_peaks(clock, t0):
    store = Store(Tier(0, 20_000), 1, [], clock=clock)
    values = np.sin(np.arange(10_000) / 50.0)
    values[7777] = 50.0  # a spike a plain average would flatten
    values[2222] = -50.0
    fill(store, "signal", values, t0)
    clock.now = t0 + 10_000
    frame = Aggregator(store, max_points=500).query("signal", t0, t0 + 10_000, 1, "avg")
    assert len(frame) <= 500
    assert frame.iloc[:, 0].max() == 50.0 and frame.iloc[:, 0].min() == -50.0


def test_legend_templates_name_columns(cores, t0):
    frame = cores.query('cpu{core="1"}', t0, t0 + 119, 60, legend="host {host} / core {core} {nope}")
    assert list(frame.columns) == ["host a / core 1 "]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"agg": "median"}, "not one of avg, min"),
        ({"step": 0}, "step must be"),
        ({"step": -5}, "step must be"),
        ({"start": 200, "end": 100}, "end must not be before start"),
    ],
)
def test_bad_queries_are_refused(cores, t0, kwargs, message):
    args = {"start": t0, "end": t0 + 60, "step": 10, "agg": "avg"}
    args.update({k: (t0 + v if k in ("start", "end") else v) for k, v in kwargs.items()})
    with pytest.raises(QueryError, match=message):
        cores.query("cpu", **args)


def test_no_matching_series_gives_an_empty_frame(cores, t0):
    frame = cores.query("missing_metric", t0, t0 + 60, 10)
    assert frame.empty and isinstance(frame.index, pd.DatetimeIndex)


def test_peaks_keep_a_one_sample_spike_at_every_zoom(clock):
    """30 days of 15 s samples with one 15 s spike and one dip: every window that holds them shows them."""
    store = Store(Tier(0, 3600), 1, [Tier(60, 7 * 86400), Tier(3600, 30 * 86400)], clock=clock)
    end = 3600.0 * 490_000
    ts = np.arange(end - 30 * 86400, end, 15.0)
    values = np.full(len(ts), 0.2)
    spike, dip = len(ts) - 20 * 5760, len(ts) - 100  # 20 days ago, and 25 minutes ago
    values[spike], values[dip] = 0.97, 0.01
    for i in range(0, len(ts), 5000):
        clock.now = float(ts[min(i + 5000, len(ts)) - 1])
        store.append(
            Sample("cpu", (), float(v), float(t)) for t, v in zip(ts[i : i + 5000], values[i : i + 5000])
        )
    clock.now = end
    agg = Aggregator(store)
    for span in (30 * 86400, 7 * 86400, 86400, 3600):
        step = 2 * span / 240
        frame = agg.query("cpu", end - span, end, step, "avg", peaks=True)
        assert len(frame) <= 242  # two points per bucket: as many points as the plain query
        if end - span <= ts[spike]:
            assert frame["cpu"].max() == pytest.approx(0.97)
        assert frame["cpu"].min() == pytest.approx(0.01)
        plain = agg.query("cpu", end - span, end, step, "avg")
        if span > 3600:
            assert plain["cpu"].min() > 0.01  # what an average alone would have shown


def test_series_that_share_a_legend_are_told_apart_by_the_labels_that_differ(store, clock, t0):
    for host, value in (("host-a", 0.2), ("host-b", 0.8)):
        fill(store, "cpu", [value] * 10, t0, instance=host, job="node")
    clock.now = t0 + 10
    frame = Aggregator(store).query("cpu", t0, t0 + 10, 5, "avg", legend="all cores")
    assert sorted(frame.columns) == ["all cores (host-a)", "all cores (host-b)"]
    assert frame["all cores (host-b)"].iloc[0] == pytest.approx(0.8)
