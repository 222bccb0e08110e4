"""Answers held for the next window: second after second of new samples, with gaps, a counter reset, a
series that appears and one that goes away, each held answer equals a whole evaluation."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from dashboard_app.settings import load_settings
from dashboard_app.sources.source import EmbeddedSource
from query.evaluate import Query, evaluate_range
from tsdb.metrics import Sample
from tsdb.store import build_store

QUERIES = [
    "g",
    "rate(c_total[30s])",
    "sum by (host) (rate(c_total[1m]))",
    "increase(c_total[1m])",
    "resets(c_total[2m])",
    "avg_over_time(g[20s])",
    "max_over_time(g[10s]) - min_over_time(g[10s])",
    "deriv(g[30s])",
    "g > 0.5",
    "topk(2, g)",
    "count(g)",
    "absent(nothing_here)",
    "max_over_time(rate(c_total[20s])[1m:5s])",
    "time() - timestamp(g)",
    "g @ end()",  # held never: evaluated whole, equal all the same
    "g offset -10s",
]


def _samples(t: float, k: int) -> list[Sample]:
    out = []
    for host in ("a", "b", "c"):
        if host == "b" and 40 <= k < 55:
            continue  # a gap: b stops reporting for fifteen seconds
        if host == "c" and k < 30:
            continue  # c appears half a minute in
        out.append(Sample("g", (("host", host),), 0.5 + 0.4 * np.sin(k / 7 + ord(host)), t))
        total = (k % 50) * 10.0 + ord(host)  # the counter restarts every 50 seconds
        out.append(Sample("c_total", (("host", host),), total, t))
    return out


@pytest.mark.parametrize(
    ("step", "span"),
    [(1.0, 180), (5.0, 180), (5.0, 1200)],  # the last reaches past the raw samples (15 minutes here)
)
def test_held_answers_equal_a_whole_evaluation_second_after_second(step, span):
    now = [time.time()]  # the store's clock, still while one second's answers are compared
    store = build_store(load_settings("development", environ={}), clock=lambda: now[0])
    source = EmbeddedSource(store)
    base = now[0] - 1400
    for k in range(1300):
        store.append(_samples(base + k, k))
    store.flush()
    compared = 0
    for k in range(1300, 1400):
        now[0] = base + k + 0.5
        store.append(_samples(base + k + 0.25, k))  # samples a quarter second after the step grid
        end = now[0]
        for promql in QUERIES:
            query = Query(promql, end - span, end, step).aligned()
            held = source.evaluate(query)  # holds, and reuses what it held a second ago
            whole = evaluate_range(source.reader(), query)
            pd.testing.assert_frame_equal(held, whole, check_exact=True, obj=f"{promql} at second {k}")
            compared += 1
    assert compared == 100 * len(QUERIES)
    held_queries = len(QUERIES) - 2  # all but the @ and the negative offset
    reachable = min(span, 900 - 300 - 180) / step  # steps reading raw samples only (lookback, longest range)
    assert source.held.reused > 0.8 * 100 * held_queries * reachable  # most of them came from held answers


def test_a_removed_series_or_a_late_sample_makes_the_whole_answer_again():
    store = build_store(load_settings("development", environ={}))
    source = EmbeddedSource(store)
    base = time.time() - 400
    for k in range(100):
        store.append(_samples(base + k, k))
    query = Query("sum(g)", base + 20, base + 99, 1.0).aligned()
    source.evaluate(query)
    # a late sample in the middle of the window (a backfill): the steps after it change
    store.append([Sample("g", (("host", "a"),), 100.0, base + 50.5)])
    later = Query("sum(g)", base + 21, base + 100, 1.0).aligned()
    pd.testing.assert_frame_equal(source.evaluate(later), evaluate_range(source.reader(), later))


def test_what_is_held_stays_within_its_bound():
    store = build_store(load_settings("development", environ={}))
    source = EmbeddedSource(store)
    source.held.most_values = 2_000  # numbers
    base = time.time() - 400
    for k in range(300):
        store.append(_samples(base + k, k))
    for span in range(60, 300, 10):  # 24 answers of 3 series over up to 300 steps
        query = Query("g", base + 299 - span, base + 299, 1.0).aligned()
        pd.testing.assert_frame_equal(source.evaluate(query), evaluate_range(source.reader(), query))
        assert source.held.values <= 2_000
    assert 0 < len(source.held._held) < 24
