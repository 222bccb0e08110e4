"""Accepted means stored once, refused means not stored: full disks, retries, restarts and kill -9."""

from __future__ import annotations

import signal
import time

import requests

from dashboard_app.runtime import Runtime
from tests.servers import free_port, quiet_settings, serving, start, stop, wait_http

API = "/api/v1/monitoring"
WIDE = 3 * 86400  # a range wider than every series' history: its count is every sample


def count(call, name: str, now: float) -> dict[str, float]:
    """Return {series labels: how many samples it holds}, read through the REST query API."""
    at = now + 60
    body = {"query": f"count_over_time({name}[{WIDE + 60}s])", "start": at, "end": at, "step": 60}
    answer = call("POST", "/metrics/query", body)
    assert answer.ok, answer.text
    return {
        ",".join(f"{k}={v}" for k, v in sorted(s["labels"].items())): sum(v for _, v in s["points"])
        for s in answer.json()["series"]
    }


def fill_the_disk(runtime: Runtime) -> None:
    """Make SQLite answer 'database or disk is full' to any write that needs another page."""
    db = runtime.archive.db
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")


def free_the_disk(runtime: Runtime) -> None:
    runtime.archive.db.execute("PRAGMA max_page_count = 1073741823")


def test_a_push_refused_on_a_full_disk_is_not_stored_and_its_retry_counts_once(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    now = time.time()
    lines = "\n".join(
        f"disk_probe,job=shop value={i} {int((now - 900 + i * 0.5) * 1e9)}" for i in range(1000)
    )
    with serving(runtime) as pb:
        register = {"name": "shop_orders_total", "type": "counter", "labels": ["order"]}
        assert pb.call("POST", "/metrics/custom/register", register).status_code == 201
        orders = [
            {"name": "shop_orders_total", "labels": {"order": str(i % 10)}, "value": 1} for i in range(1000)
        ]
        fill_the_disk(runtime)
        refused = pb.call("POST", "/metrics/custom/record", {"samples": orders})
        assert refused.status_code == 507, refused.text
        assert "full" in refused.json()["error"] and "nothing was stored" in refused.json()["error"]
        influx = requests.post(pb.url + "/api/v2/write?precision=ns", data=lines, timeout=10)
        assert influx.status_code == 507, influx.text
        assert count(pb.call, "shop_orders_total", now) == {}  # nothing of either is served
        assert count(pb.call, "disk_probe_value", now) == {}
        runtime.scheduler.run_once("flush")  # the periodic flush fails too, and has nothing of them
        free_the_disk(runtime)
        runtime.scheduler.run_once("flush")
        assert pb.call("POST", "/metrics/custom/record", {"samples": orders}).ok  # the client's retry
        assert requests.post(pb.url + "/api/v2/write?precision=ns", data=lines, timeout=10).status_code == 204
        expected = {f"order={i}": 100.0 for i in range(10)}
        assert count(pb.call, "shop_orders_total", now) == expected
        assert count(pb.call, "disk_probe_value", now) == {"job=shop": 1000.0}
    runtime.stop()
    again = Runtime(quiet_settings(), tmp_path)
    try:
        with serving(again) as pb:
            assert count(pb.call, "shop_orders_total", now) == expected
            assert count(pb.call, "disk_probe_value", now) == {"job=shop": 1000.0}
    finally:
        again.stop()


def history(now: float) -> str:
    """Line protocol: one series with two hours of history that ended an hour ago (older than the raw
    tier), ten series written over the last ten minutes."""
    old = [f"backfilled,job=import value={i % 7} {int((now - 3 * 3600 + i) * 1e9)}" for i in range(7201)]
    recent = [
        f"recent,job=live,n={n} value={i} {int((now - 600 + i * 0.5) * 1e9)}"
        for n in range(10)
        for i in range(1100)
    ]
    return "\n".join(old + recent)


def test_counts_are_equal_after_every_clean_restart_and_every_kill_9(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    now = time.time()
    lines = history(now).split("\n")

    def call(method, path, body=None):
        return requests.request(method, url + API + path, json=body, timeout=30)

    def counts() -> dict[str, float]:
        return {**count(call, "backfilled_value", now), **count(call, "recent_value", now)}

    def running():
        proc = start(tmp_path, port, PULSEBOARD_DEMO="false")
        wait_http(url + "/-/healthy", proc)
        return proc

    proc = running()
    try:
        for k in range(0, len(lines), 5000):  # as Telegraf sends: batches of 5,000 lines
            answer = requests.post(url + "/api/v2/write?precision=ns", data="\n".join(lines[k : k + 5000]))
            assert answer.status_code == 204, answer.text
        before = counts()
        assert before["job=import"] == 7201
        assert [before[f"job=live,n={n}"] for n in range(10)] == [1100.0] * 10
        for _ in range(3):  # clean restarts
            stop(proc)
            proc = running()
            assert counts() == before
        for _ in range(2):  # killed in the middle of a write, then started again
            requests.post(url + "/api/v2/write?precision=ns", data="\n".join(lines[:5000]))  # counted twice
            stop(proc, signal.SIGKILL)
            proc = running()
            assert counts()["job=import"] == before["job=import"] + 5000
            before = counts()
    finally:
        stop(proc)
