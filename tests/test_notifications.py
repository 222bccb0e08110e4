"""Notifications through Apprise to a real local receiver, no data as a state, and silences: with the
real store, the real engine and real HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboard_app.alerts.notify import wait_delivered
from dashboard_app.runtime import Runtime
from dashboard_app.settings import served_at
from layouts.alert_views import alerts_body
from layouts.validation import ConfigError
from tests.servers import free_port, quiet_settings, serving

DEPTH = "shop_queue_depth"
RULE = {
    "id": "queue-too-deep",
    "name": "Queue too deep",
    "query": DEPTH,
    "aggregation": "last",
    "window": 60,
    "condition": ">",
    "threshold": 10,
    "for": 0,
    "severity": "critical",
    "labels": {"team": "shop"},
    "annotations": {"summary": "Queue at {{ value }}"},
}


class Receiver(BaseHTTPRequestHandler):
    """What Apprise's json:// sends: one JSON body per message; answers 500 while ``failures`` last."""

    messages: list = []
    failures = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Receiver.failures > 0:
            Receiver.failures -= 1
            self.send_response(500)
        else:
            Receiver.messages.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.messages, Receiver.failures = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()
    thread.join(5)


def push(pb, value: float, name: str = DEPTH) -> None:
    pb.call("POST", "/metrics/custom/register", {"name": name, "type": "gauge"})
    assert pb.call("POST", "/metrics/custom/record", {"samples": [{"name": name, "value": value}]}).ok


def wait_messages(count: int, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(Receiver.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return Receiver.messages


def runtime_with(tmp_path, **settings) -> Runtime:
    runtime = Runtime(quiet_settings(**settings), tmp_path)
    runtime.notifier.backoff = 0.1
    runtime.notifier.start()
    return runtime


def test_apprise_delivers_firing_and_resolved_with_rule_value_labels_and_link(tmp_path, receiver):
    url = f"json://127.0.0.1:{receiver}/"
    runtime = runtime_with(
        tmp_path, alerts__notify=json.dumps([url]), alerts__external_url="http://pulse.example:8050"
    )
    with serving(runtime) as pb:
        assert pb.call("POST", "/alerts/rules", RULE).status_code == 201
        push(pb, 42)
        runtime.alerts.evaluate()
        [firing] = wait_messages(1)
        assert firing["title"] == "FIRING: Queue too deep (critical)"
        assert firing["type"] == "failure"  # critical: flagged as such where the service can
        for part in ("Queue at 42", "Value: 42", "Labels: team=shop", "queue-too-deep"):
            assert part in firing["message"]
        assert "http://pulse.example:8050/alerts" in firing["message"]

        push(pb, 3)
        runtime.alerts.evaluate()
        resolved = wait_messages(2)[1]
        assert resolved["title"] == "RESOLVED: Queue too deep (critical)" and resolved["type"] == "success"
        assert "Resolved at:" in resolved["message"]
        [target] = pb.call("GET", "/alerts/notifications").json()["targets"]
        assert target["name"] == "json" and target["delivered"] == 2 and target["failed"] == 0
    runtime.stop()


def test_a_receiver_that_fails_once_is_tried_again_and_the_failure_is_shown(tmp_path, receiver):
    Receiver.failures = 1
    runtime = runtime_with(tmp_path, alerts__notify=json.dumps([f"json://127.0.0.1:{receiver}/"]))
    with serving(runtime) as pb:
        pb.call("POST", "/alerts/rules", RULE)
        push(pb, 42)
        runtime.alerts.evaluate()
        [message] = wait_messages(1)
        assert message["title"].startswith("FIRING")
        assert wait_delivered(runtime.notifier, 1)
        [target] = pb.call("GET", "/alerts/notifications").json()["targets"]
        assert target["retried"] == 1 and target["delivered"] == 1 and not target["failing"]
        assert "500" in target["last_error"]  # what went wrong the first time stays readable
    runtime.stop()


def test_a_target_that_keeps_failing_is_counted_and_shown_failing(tmp_path):
    dead = f"json://127.0.0.1:{free_port()}/"
    runtime = runtime_with(tmp_path, alerts__notify=json.dumps([{"name": "ops", "url": dead}]))
    runtime.notifier.backoff = 0.02
    with serving(runtime) as pb:
        pb.call("POST", "/alerts/rules", RULE)
        push(pb, 42)
        runtime.alerts.evaluate()
        deadline = time.monotonic() + 20
        while runtime.notifier.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        [target] = pb.call("GET", "/alerts/notifications").json()["targets"]
        assert target["name"] == "ops" and target["failed"] == 1 and target["failing"]
        assert target["retried"] == 4 and target["last_error"]
        runtime.scheduler.run_once("self")  # Pulseboard's own metrics into the store, as each tick does
        metrics = pb.call("GET", "/metrics").text
        assert 'pulseboard_alert_notifications_failed_total{target="ops"} 1.0' in metrics
    runtime.stop()


def test_a_rule_tells_only_the_targets_it_names(tmp_path, receiver):
    other = f"json://127.0.0.1:{free_port()}/"  # nobody listens: a message there would be counted
    targets = [{"name": "shop", "url": f"json://127.0.0.1:{receiver}/"}, {"name": "ops", "url": other}]
    runtime = runtime_with(tmp_path, alerts__notify=json.dumps(targets))
    with serving(runtime) as pb:
        assert pb.call("POST", "/alerts/rules", {**RULE, "notify": ["shop"]}).status_code == 201
        bad = pb.call("POST", "/alerts/rules", {**RULE, "id": "other", "notify": ["pager"]})
        assert bad.status_code == 400 and "pager" in bad.json()["error"] and bad.json()["field"] == "notify"
        push(pb, 42)
        runtime.alerts.evaluate()
        assert len(wait_messages(1)) == 1
        time.sleep(0.5)
        status = {t["name"]: t for t in runtime.notifier.status()}
        assert (
            status["shop"]["delivered"] == 1
            and status["ops"]["retried"] == 0
            and not status["ops"]["failing"]
        )
    runtime.stop()


@pytest.mark.parametrize(
    "targets, words",
    [
        (["nosuchservice://x"], "not an Apprise URL"),
        (["json://a", "json://b"], None),  # two plain URLs of a scheme are numbered, not refused
        (
            [{"name": "ops", "url": "json://a"}, {"name": "ops", "url": "json://b"}],
            "two targets are named 'ops'",
        ),
    ],
)
def test_notification_targets_are_checked_at_start(targets, words):
    if words is None:
        settings = quiet_settings(alerts__notify=json.dumps(targets))
        assert [t.name for t in settings.alerts.targets()] == ["json-1", "json-2"]
        return
    with pytest.raises(ConfigError, match=words):
        quiet_settings(alerts__notify=json.dumps(targets))


def test_a_pushed_series_that_stops_fires_no_data_and_resolves_when_it_returns(tmp_path, receiver):
    runtime = runtime_with(tmp_path, alerts__notify=json.dumps([f"json://127.0.0.1:{receiver}/"]))
    stale = {**RULE, "id": "queue-reporting", "name": "Queue reporting", "window": 1, "for": 3}
    stale["condition"], stale["threshold"] = ">", 1000  # never by its value: only no data fires it
    with serving(runtime) as pb:
        assert pb.call("POST", "/alerts/rules", stale).status_code == 201
        push(pb, 5)
        runtime.alerts.evaluate()
        assert pb.call("GET", "/alerts/active").json()["alerts"] == []
        time.sleep(1.2)  # nothing arrives for longer than the window
        runtime.alerts.evaluate()
        [pending] = pb.call("GET", "/alerts/active").json()["alerts"]
        assert pending["state"] == "pending" and pending["no_data"]
        time.sleep(2)  # and for longer than `for` since it was last seen
        runtime.alerts.evaluate()
        [firing] = pb.call("GET", "/alerts/active").json()["alerts"]
        assert firing["state"] == "firing" and firing["labels"]["nodata"] == "true"
        assert firing["last_seen"] and firing["annotations"]["summary"].startswith("No data since ")
        [told] = wait_messages(1)
        assert told["title"] == "NO DATA: Queue reporting (critical)"
        assert told["message"].count("No data since") == 1 and f"{DEPTH} has had no sample" in told["message"]

        push(pb, 6)  # samples return
        runtime.alerts.evaluate()
        assert pb.call("GET", "/alerts/active").json()["alerts"] == []
        assert wait_messages(2)[1]["title"].startswith("RESOLVED")
        [past] = pb.call("GET", "/alerts/history").json()["alerts"]
        assert past["no_data"] and past["state"] == "resolved"
    runtime.stop()


def test_a_silence_mutes_shows_muted_is_audited_and_once_ended_the_alert_is_told(tmp_path, receiver):
    runtime = runtime_with(tmp_path, alerts__notify=json.dumps([f"json://127.0.0.1:{receiver}/"]))
    with serving(runtime) as pb:
        pb.call("POST", "/alerts/rules", RULE)
        made = pb.call(
            "POST",
            "/alerts/silences",
            {"rule_id": "queue-too-deep", "labels": {"team": "shop"}, "for": "1h", "reason": "migrating"},
        )
        assert made.status_code == 201, made.text
        silence = made.json()["silence"]
        assert abs(silence["until"] - time.time() - 3600) < 5 and silence["reason"] == "migrating"
        push(pb, 42)
        runtime.alerts.evaluate()
        [alert] = pb.call("GET", "/alerts/active").json()["alerts"]
        assert alert["state"] == "firing" and alert["silenced_by"] == silence["id"]
        time.sleep(0.5)
        assert Receiver.messages == []  # muted: nobody is told
        [entry] = [e for e in pb.call("GET", "/audit").json()["entries"] if "silences" in e["target"]]
        assert entry["status"] == 201 and "migrating" in entry["detail"]

        assert pb.call("DELETE", f"/alerts/silences/{silence['id']}").status_code == 200
        assert pb.call("DELETE", f"/alerts/silences/{silence['id']}").status_code == 404
        runtime.alerts.evaluate()  # still firing, no longer muted: told now
        [told] = wait_messages(1)
        assert told["title"].startswith("FIRING")
    runtime.stop()


def test_a_silence_ends_on_its_own_and_survives_a_restart(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as pb:
        until = time.time() + 1.5
        made = pb.call(
            "POST", "/alerts/silences", {"labels": {"team": "shop"}, "until": until, "reason": "x"}
        )
        assert made.status_code == 201
    runtime.stop()
    again = Runtime(quiet_settings(), tmp_path)
    with serving(again) as pb:
        [kept] = pb.call("GET", "/alerts/silences").json()["silences"]
        assert kept["labels"] == {"team": "shop"}
        time.sleep(1.6)
        assert pb.call("GET", "/alerts/silences").json()["silences"] == []
    again.stop()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"for": "1h", "reason": "x"}, "rule_id"),  # mutes nothing in particular
        ({"rule_id": "queue-too-deep", "for": "1h"}, "reason"),
        ({"rule_id": "queue-too-deep", "reason": "x"}, "until"),
        ({"rule_id": "queue-too-deep", "until": 1, "reason": "x"}, "until"),
        ({"rule_id": "queue-too-deep", "for": "forever", "reason": "x"}, "for"),
        ({"rule_id": "queue-too-deep", "for": "400d", "reason": "x"}, "until"),
        ({"rule_id": "nope", "for": "1h", "reason": "x"}, "rule_id"),
        ({"labels": {"team": 5}, "for": "1h", "reason": "x"}, "labels"),
        ({"labels": {"team": "shop"}, "until": "tomorrow", "reason": "x"}, "until"),
        ({"rule_id": "queue-too-deep", "for": "1h", "reason": "x", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_silence_is_refused_naming_the_field(pulseboard, body, field):
    pulseboard.call("POST", "/alerts/rules", RULE)
    answer = pulseboard.call("POST", "/alerts/silences", body)
    assert answer.status_code in (400, 404) and answer.json()["field"] == field
    assert pulseboard.call("GET", "/alerts/silences").json()["silences"] == []


def test_an_alerts_value_and_its_rules_threshold_are_shown_in_the_metrics_unit(tmp_path, receiver):
    runtime = runtime_with(tmp_path, alerts__notify=json.dumps([f"json://127.0.0.1:{receiver}/"]))
    sent = "shop_sent_bytes_total"
    rule = {**RULE, "id": "sending-fast", "query": sent, "aggregation": "rate", "threshold": 1024}
    rule["annotations"] = {}
    with serving(runtime) as pb:
        body = {"name": sent, "type": "counter", "unit": "bytes"}
        assert pb.call("POST", "/metrics/custom/register", body).status_code == 201
        assert pb.call("POST", "/alerts/rules", rule).status_code == 201
        [shown] = [r for r in pb.call("GET", "/alerts/rules").json()["rules"] if r["id"] == "sending-fast"]
        assert shown["unit"] == "bytes_per_second"  # a rate of bytes is bytes per second
        now = time.time()
        # increments of 30 KiB a second over the rule's whole window (a pushed counter sample adds to
        # the running total): rate() is Prometheus', so the window must hold the samples it averages
        samples = [{"name": sent, "value": 30720, "timestamp": now - 90 + i} for i in range(91)]
        assert pb.call("POST", "/metrics/custom/record", {"samples": samples}).ok
        runtime.alerts.evaluate()
        [firing] = wait_messages(1)
        assert "Value: 30 KiB/s" in firing["message"]
        [alert] = pb.call("GET", "/alerts/active").json()["alerts"]
        assert alert["unit"] == "bytes_per_second"
        page = alerts_body([shown], [alert], [], time.time())
        text = json.dumps([c.to_plotly_json() for c in page], default=str)
        assert "30 KiB/s" in text and "> 1 KiB/s" in text and "0 s" in text
    runtime.stop()


def test_links_in_alerts_lead_where_pulseboard_is_served_unless_told_otherwise():
    settings = quiet_settings()
    assert served_at(settings, "127.0.0.1", 9123).alerts.external_url == "http://127.0.0.1:9123"
    assert served_at(settings, "0.0.0.0", 80).alerts.external_url == f"http://{socket.gethostname()}:80"
    told = quiet_settings(alerts__external_url="https://pulse.example.com")
    assert served_at(told, "0.0.0.0", 80).alerts.external_url == "https://pulse.example.com"
