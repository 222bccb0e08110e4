"""Limits over real HTTP: concurrent queries, query time, bodies, and paths that try to climb out."""

from __future__ import annotations

import time

import requests

from dashboard_app.runtime import Runtime
from tests.servers import quiet_settings, serving
from tsdb.metrics import Sample

QUERY = {"query": "pulseboard_system_cpu_core_usage_ratio", "step": 60}


def test_queries_past_the_concurrency_cap_are_told_to_come_back(tmp_path):
    runtime = Runtime(quiet_settings(query__max_concurrent="1"), tmp_path)
    with serving(runtime) as pb:
        runtime.query_gate.acquire()  # a long query is running
        busy = pb.call("POST", "/metrics/query", QUERY)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert "1 queries are running" in busy.json()["error"]
        export = pb.call("GET", "/metrics/export.csv", params={**QUERY, "start": time.time() - 60})
        assert export.status_code == 503
        runtime.query_gate.release()
        assert pb.call("POST", "/metrics/query", QUERY).status_code == 200
        streamed = pb.call("GET", "/metrics/export.csv", params={**QUERY, "start": time.time() - 60})
        assert streamed.status_code == 200
        assert pb.call("POST", "/metrics/query", QUERY).status_code == 200  # the export gave its slot back
    runtime.archive.close()


def test_a_query_that_runs_too_long_is_stopped(tmp_path):
    runtime = Runtime(quiet_settings(query__timeout="1ms"), tmp_path)
    now = time.time()
    runtime.store.append(
        Sample("pulseboard_system_cpu_core_usage_ratio", (("core", str(c)),), 0.5, now - 60 + i)
        for c in range(300)
        for i in range(60)
    )
    with serving(runtime) as pb:
        slow = pb.call("POST", "/metrics/query", {**QUERY, "start": now - 60, "end": now, "step": 1})
        assert slow.status_code == 503 and "timed out" in slow.json()["error"]
    runtime.archive.close()


def test_paths_that_climb_out_get_404(pulseboard):
    for path in (
        "/assets/../app.py",
        "/assets/%2e%2e/app.py",
        "/assets/..%2fconfig/production.yaml",
        "/api/v1/monitoring/dashboards/..%2f..%2fconfig/export.zip",
        "/api/v1/monitoring/dashboards/operations/panels/..%2f..%2fapp.py/export.csv",
    ):
        answer = requests.get(pulseboard.url + path, timeout=10)
        assert answer.status_code == 404, path
        assert "import" not in answer.text and "environment:" not in answer.text


def test_a_body_over_the_server_cap_is_refused_without_being_read(pulseboard):
    huge = b"x" * (17 * 2**20)
    answer = requests.post(
        pulseboard.url + "/_dash-update-component",
        data=huge,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 413
