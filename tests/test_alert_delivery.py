"""Alerts over real HTTP: the API, a real Alertmanager and a webhook receive firing then resolved."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from dashboard_app.alerts.notify import wait_delivered
from dashboard_app.runtime import Runtime
from tests.servers import free_port, quiet_settings, serving

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
PROMTOOL = shutil.which("promtool")

RULE = {
    "id": "queue-too-deep",
    "name": "Queue too deep",
    "query": "shop_queue_depth",
    "aggregation": "last",
    "window": 60,
    "condition": ">",
    "threshold": 10,
    "for": 0,
    "severity": "warning",
    "labels": {"team": "shop"},
    "annotations": {"summary": "Queue at {{ value }}"},
}


def push_depth(pb, value: float) -> None:
    pb.call("POST", "/metrics/custom/register", {"name": "shop_queue_depth", "type": "gauge"})
    assert pb.call(
        "POST", "/metrics/custom/record", {"samples": [{"name": "shop_queue_depth", "value": value}]}
    ).ok


def test_rules_api_create_change_delete_and_restart(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as pb:
        created = pb.call("POST", "/alerts/rules", RULE)
        assert created.status_code == 201 and created.json()["rule"]["status"]["state"] == "inactive"
        assert pb.call("POST", "/alerts/rules", RULE).status_code == 409
        bad = pb.call("POST", "/alerts/rules", {**RULE, "id": "x", "condition": "=>"})
        assert bad.status_code == 400 and bad.json()["field"] == "condition"
        missing = pb.call(
            "POST", "/alerts/rules", {k: v for k, v in RULE.items() if k != "threshold"} | {"id": "y"}
        )
        assert missing.status_code == 400 and missing.json()["field"] == "threshold"
        changed = pb.call("PUT", "/alerts/rules/queue-too-deep", {**RULE, "threshold": 20})
        assert changed.json()["rule"]["threshold"] == 20
        assert pb.call("DELETE", "/alerts/rules/high-cpu").status_code == 403  # shipped: disable instead
        off = pb.call(
            "PUT",
            "/alerts/rules/high-cpu",
            {**pb.call("GET", "/alerts/rules").json()["rules"][0], "enabled": False},
        )
        assert off.status_code == 200, off.text
    runtime.stop()
    again = Runtime(quiet_settings(), tmp_path)
    with serving(again) as pb:
        rules = {r["id"]: r for r in pb.call("GET", "/alerts/rules").json()["rules"]}
        assert rules["queue-too-deep"]["threshold"] == 20 and rules["high-cpu"]["enabled"] is False
        assert pb.call("DELETE", "/alerts/rules/queue-too-deep").status_code == 200
        assert pb.call("GET", "/alerts/rules").json()["rules"][-1]["id"] != "queue-too-deep"
    again.stop()


def test_the_export_passes_promtool(pulseboard, tmp_path):
    assert PROMTOOL, "promtool is installed by `make test` (Debian package prometheus)"
    assert pulseboard.call("POST", "/alerts/rules", RULE).status_code == 201
    export = pulseboard.call("GET", "/alerts/rules/export")
    assert (
        export.ok
        and "QueueTooDeep" in export.text
        and "last_over_time(shop_queue_depth[60s]) > 10" in export.text
    )
    path = tmp_path / "rules.yml"
    path.write_text(export.text)
    check = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "11 rules found" in check.stdout  # the ten shipped and this one


def test_backtest_endpoint_finds_the_past_episode(pulseboard):
    push = {"name": "shop_queue_depth", "type": "gauge"}
    pulseboard.call("POST", "/metrics/custom/register", push)
    now = time.time()
    samples = [
        {"name": "shop_queue_depth", "value": 50 if 300 <= t < 420 else 2, "timestamp": now - 600 + t}
        for t in range(0, 600, 5)
    ]
    assert pulseboard.call("POST", "/metrics/custom/record", {"samples": samples}).ok
    body = {"rule": RULE, "start": now - 600, "end": now, "step": 5}
    events = pulseboard.call("POST", "/alerts/rules/backtest", body).json()["events"]
    assert [e["state"] for e in events] == ["firing", "resolved"]
    assert abs(events[0]["at"] - (now - 300)) <= 5 and events[0]["value"] == 50
    assert abs(events[1]["at"] - (now - 180)) <= 5
    bad = pulseboard.call("POST", "/alerts/rules/backtest", {"rule_id": "nope"})
    assert bad.status_code == 400 and bad.json()["field"] == "rule_id"


class Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Receiver.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def alertmanager(tmp_path):
    assert ALERTMANAGER, "Alertmanager is installed by `make test` (Debian package prometheus-alertmanager)"
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: 'null'}\nreceivers: [{name: 'null'}]\n")
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/-/ready", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(10)


def alertmanager_alerts(url: str) -> list[dict]:
    return [
        a
        for a in requests.get(url + "/api/v2/alerts", timeout=5).json()
        if a["labels"].get("alertname") == "Queue too deep"
    ]


def test_firing_and_resolved_reach_alertmanager_and_a_webhook(tmp_path, alertmanager, webhook):
    hook_url, received = webhook
    settings = quiet_settings(alerts__alertmanager=alertmanager, alerts__webhooks=json.dumps([hook_url]))
    runtime = Runtime(settings, tmp_path)
    runtime.notifier.start()
    with serving(runtime) as pb:
        assert pb.call("POST", "/alerts/rules", RULE).status_code == 201
        push_depth(pb, 42)
        runtime.alerts.evaluate()
        assert wait_delivered(runtime.notifier, 2), runtime.notifier.status()
        [firing] = alertmanager_alerts(alertmanager)
        assert firing["labels"]["severity"] == "warning" and firing["labels"]["team"] == "shop"
        assert firing["annotations"]["summary"] == "Queue at 42" and firing["status"]["state"] == "active"
        assert received[0]["status"] == "firing" and received[0]["alerts"][0]["value"] == 42

        push_depth(pb, 3)
        runtime.alerts.evaluate()
        assert wait_delivered(runtime.notifier, 4)
        deadline = time.monotonic() + 10
        while alertmanager_alerts(alertmanager) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alertmanager_alerts(alertmanager) == []  # endsAt passed: resolved there too
        assert received[1]["status"] == "resolved" and received[1]["alerts"][0]["resolved_at"]
        history = pb.call("GET", "/alerts/history").json()["alerts"]
        assert history[0]["rule_id"] == "queue-too-deep" and history[0]["state"] == "resolved"
    runtime.stop()


def test_a_receiver_that_is_down_does_not_block_evaluation(tmp_path):
    settings = quiet_settings(alerts__webhooks=json.dumps([f"http://127.0.0.1:{free_port()}/hook"]))
    runtime = Runtime(settings, tmp_path)
    runtime.notifier.backoff = 0.05
    runtime.notifier.start()
    with serving(runtime) as pb:
        pb.call("POST", "/alerts/rules", RULE)
        push_depth(pb, 42)
        t0 = time.perf_counter()
        assert runtime.alerts.evaluate() == 1
        assert time.perf_counter() - t0 < 2  # delivery happens on its own thread
        deadline = time.monotonic() + 10
        while runtime.notifier.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runtime.notifier.failed == 1 and "Connection refused" in runtime.notifier.last_error
    runtime.stop()
