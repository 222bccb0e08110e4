"""Every PromQL query has a budget: text checked before parsing, one gate, a deadline while it runs,
a samples budget, and numbers out of range refused, all over real HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from dashboard_app.runtime import Runtime
from tests.servers import quiet_settings, serving
from tsdb.metrics import Sample

NAME = "pulseboard_system_cpu_core_usage_ratio"


@pytest.fixture
def filled(tmp_path):
    """A Pulseboard holding 300 series of 10 minutes at 1 s, served over HTTP, with a small budget."""
    runtime = Runtime(quiet_settings(query__max_samples="200000", query__max_concurrent="2"), tmp_path)
    now = time.time()
    runtime.store.append(
        Sample(NAME, (("core", str(c)),), 0.5, now - 600 + i) for c in range(300) for i in range(600)
    )
    with serving(runtime) as pb:
        yield pb, now
    runtime.archive.close()


def prom(pb, route: str, **params) -> requests.Response:
    return requests.post(pb.url + "/api/v1/" + route, data=params, timeout=60)


def test_a_deeply_nested_query_is_refused_before_it_is_parsed_and_the_server_stays_up(filled):
    pb, _ = filled
    for depth in (65, 500, 5_000):
        text = "(" * depth + NAME + ")" * depth
        for route, params in (("query", {"query": text}), ("series", {"match[]": text})):
            answer = prom(pb, route, **params)
            assert answer.status_code == 400, (depth, route)
            assert "at most 64" in answer.json()["error"]
    many = "(" * 10_000 + NAME + ")" * 10_000  # the 20 KB query that took 6.7 GB and crashed the worker
    assert prom(pb, "query", query=many).status_code == 400
    chained = "+".join(["x"] * 2000)
    answer = prom(pb, "query", query=chained)
    assert answer.status_code == 400 and "operators" in answer.json()["error"]
    assert prom(pb, "query", query="x" * 20_000).status_code == 400  # longer than any real query
    nested = "(" * 30 + f"sum(rate({NAME}[1m]))" + ")" * 30  # deep, but within the limit: answered
    assert prom(pb, "query", query=nested).json()["status"] == "success"
    assert requests.get(pb.url + "/-/healthy", timeout=5).status_code == 200


def test_numbers_and_patterns_out_of_range_are_refused_not_crashed(filled):
    pb, now = filled
    assert prom(pb, "query", query=f"rate({NAME}[1000000000y])").status_code == 400
    assert prom(pb, "query", query=NAME, time="1e18").status_code == 400
    assert prom(pb, "query_range", query=NAME, start=now - 60, end=now, step="1e18").status_code == 400
    regex = "a|" * 3944 + "b"  # 7,889 characters: more than the 1,024 a pattern may have
    answer = prom(pb, "query", query=f'{NAME}{{core=~"{regex}"}}')
    assert answer.status_code == 400 and "1024" in answer.json()["error"]
    everything = prom(pb, "query", query=f"topk(Inf, {NAME})").json()
    assert everything["status"] == "success" and len(everything["data"]["result"]) == 300
    assert prom(pb, "query", query=f"bottomk(-Inf, {NAME})").json()["data"]["result"] == []


def test_a_query_over_the_samples_budget_gets_422_naming_the_limit(filled):
    pb, now = filled
    # 300 series for 1,000 steps is 300,000 points: over the 200,000 this Pulseboard allows.
    answer = prom(pb, "query_range", query=f"topk(5, {NAME})", start=now - 1000, end=now, step=1)
    assert answer.status_code == 422
    assert answer.json()["errorType"] == "execution" and "query.max_samples" in answer.json()["error"]
    answer = prom(pb, "query", query=f"quantile_over_time(0.9, {NAME}[10m])")  # 180,000 samples loaded
    assert answer.status_code == 200
    twice = f"count_over_time({NAME}[10m]) - count_over_time({NAME}[10m])"  # 360,000 samples in all
    assert prom(pb, "query", query=twice).status_code == 422
    small = prom(pb, "query_range", query=f"topk(5, {NAME})", start=now - 100, end=now, step=1)
    assert small.status_code == 200 and len(small.json()["data"]["result"]) >= 5


def test_queries_past_the_gate_or_the_deadline_answer_503_with_retry_after(tmp_path):
    runtime = Runtime(quiet_settings(query__timeout="1ms", query__max_concurrent="1"), tmp_path)
    now = time.time()
    runtime.store.append(
        Sample(NAME, (("core", str(c)),), float(i % 7), now - 600 + i) for c in range(300) for i in range(600)
    )
    with serving(runtime) as pb:
        slow = prom(
            pb, "query_range", query=f"quantile_over_time(0.5, {NAME}[5m])", start=now - 300, end=now, step=1
        )
        assert slow.status_code == 503 and slow.json()["errorType"] == "timeout"
        assert slow.headers["Retry-After"] == "1" and "query.timeout" in slow.json()["error"]
        runtime.query_gate.acquire()  # another query holds the only slot
        busy = prom(pb, "query", query="1")
        assert busy.status_code == 503 and busy.json()["errorType"] == "unavailable"
        assert busy.headers["Retry-After"] == "1"
        runtime.query_gate.release()
        assert prom(pb, "query", query="1").json()["data"]["result"][1] == "1"
    runtime.archive.close()


def test_a_rest_query_over_thousands_of_series_is_answered_whole(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    now = time.time()
    runtime.store.append(
        Sample("jobs_done_total", (("worker", str(w)),), float(i), now - 600 + i * 10)
        for w in range(3000)
        for i in range(60)
    )
    with serving(runtime) as pb:
        body = {"query": "jobs_done_total", "start": now - 600, "end": now, "step": 10, "aggregation": "max"}
        answer = pb.call("POST", "/metrics/query", body)
        assert answer.status_code == 200, answer.text  # within query.timeout: building it is linear
        series = answer.json()["series"]
        assert len(series) == 3000 and {s["labels"]["worker"] for s in series} == {
            str(w) for w in range(3000)
        }
        assert all(s["points"][-1][1] == 59.0 for s in series)
    runtime.archive.close()
