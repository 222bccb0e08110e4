"""Two replicas under the production command, one state database (PostgreSQL, or SQLite on one host), a
real Prometheus taking what they forward: what one makes the other serves, concurrent writes lose
nothing, each alert change is told once, also after the replica telling it is killed, and pushes of
every protocol are read back from the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from dashboard_app.api.frame import PREFIX as API
from ingest.forward import write_request
from tests.servers import (
    REPLICA_ADMIN_PASSWORD,
    api_key,
    free_port,
    logged_in,
    new_database,
    output,
    postgres_cluster,
    prometheus_query,
    prometheus_server,
    start_replica,
    stop,
    wait_http,
)

PASSWORD = "a-long-enough-password"
DEPTH = "shop_queue_depth"


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver: keeps every body Pulseboard posts."""

    bodies: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        Hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """The real Prometheus, taking remote write (what the replicas forward)."""
    tmp = tmp_path_factory.mktemp("replicas-prometheus")
    with prometheus_server(tmp, {}, flags=("--web.enable-remote-write-receiver",)) as url:
        yield url


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def database(request, tmp_path_factory):
    if request.param == "sqlite":  # replicas on one host may share the SQLite file
        yield f"sqlite:///{tmp_path_factory.mktemp('replicas-sqlite') / 'state.sqlite'}"
        return
    with postgres_cluster() as base:
        yield new_database(base)


class Replica:
    """One replica process: ``pulseboard``'s production command on a port of its own."""

    def __init__(self, data_dir, database: str, prometheus: str, hook: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = start_replica(
            self.port,
            data_dir,
            prometheus,
            PULSEBOARD_DATABASE__URL=database,
            PULSEBOARD_ALERTS__INTERVAL="1",
            PULSEBOARD_ALERTS__WEBHOOKS=json.dumps([hook]),
        )
        wait_http(self.url + "/login", self.proc, timeout=60)
        self.admin = logged_in(self.url, "admin", REPLICA_ADMIN_PASSWORD)

    def call(self, method: str, path: str, http: requests.Session | None = None, **kwargs):
        return (http or self.admin).request(method, self.url + API + path, timeout=20, **kwargs)

    def push(self, sample: dict, key: dict) -> None:
        """One sample by the JSON push, with an ingest key's header; it must be taken."""
        answer = requests.post(
            self.url + API + "/metrics/custom/record", json={"samples": [sample]}, headers=key, timeout=10
        )
        assert answer.status_code == 200, answer.text

    def alerting(self) -> dict:
        return self.call("GET", "/status").json()["alerting"]


@pytest.fixture(scope="module")
def replicas(database, prometheus, hook, tmp_path_factory):
    started: list[Replica] = []
    try:
        for i in range(2):
            started.append(Replica(tmp_path_factory.mktemp(f"replica-{i}"), database, prometheus, hook))
        yield started
    finally:
        for replica in started:
            if replica.proc.poll() is None:
                stop(replica.proc)


def test_what_one_replica_makes_the_other_serves_and_a_logout_ends_everywhere(replicas):
    one, two = replicas
    made = one.call("POST", "/users", json={"name": "maria", "password": PASSWORD, "role": "editor"})
    assert made.status_code == 201, made.text
    maria = logged_in(two.url, "maria", PASSWORD)  # made on one, logs in on the other
    dashboard = {
        "id": "shop",
        "title": "Shop",
        "access": "operations",
        "panels": [{"id": "depth", "title": "Depth", "type": "line", "queries": [{"expr": DEPTH}]}],
    }
    assert one.call("POST", "/dashboards/create", json=dashboard).status_code == 201
    shown = two.call("GET", "/dashboards/shop")
    assert shown.status_code == 200 and shown.json()["dashboard"]["title"] == "Shop", shown.text
    rule = {"id": "r-shared", "name": "Shared", "expr": f"{DEPTH} > 1000", "severity": "info"}
    assert one.call("POST", "/alerts/rules", json=rule).status_code == 201
    time.sleep(1.2)  # a replica trusts what it read of the rules for a second
    assert "r-shared" in [r["id"] for r in two.call("GET", "/alerts/rules").json()["rules"]]
    silence = {"rule_id": "r-shared", "for": "1h", "reason": "maintenance"}
    made = two.call("POST", "/alerts/silences", json=silence)
    assert made.status_code == 201, made.text
    time.sleep(1.2)
    assert made.json()["silence"]["id"] in [
        s["id"] for s in one.call("GET", "/alerts/silences").json()["silences"]
    ]
    key = api_key(one.admin, one.url, ["read"])
    assert requests.get(two.url + API + "/status", headers={"X-API-Key": key}, timeout=10).ok
    audit = one.call("GET", "/audit").json()["entries"]
    assert any(e["target"].endswith("/alerts/silences") for e in audit)  # a write on two, in one's log
    # A logout on one replica ends that session on the other at once.
    assert maria.get(one.url + "/edit", allow_redirects=False).status_code == 200
    maria.post(two.url + "/logout", allow_redirects=False)
    assert maria.get(one.url + "/edit", allow_redirects=False).status_code in (302, 401)
    # A demotion on one replica ends the session on the other at once too.
    maria = logged_in(one.url, "maria", PASSWORD)
    assert maria.get(two.url + "/edit", allow_redirects=False).status_code == 200
    demoted = two.call("POST", "/users", json={"name": "maria", "password": PASSWORD, "role": "viewer"})
    assert demoted.status_code == 201, demoted.text
    assert maria.get(one.url + "/edit", allow_redirects=False).status_code in (302, 401)
    assert (
        logged_in(one.url, "maria", PASSWORD).get(one.url + "/edit", allow_redirects=False).status_code == 403
    )


def test_writes_from_both_replicas_at_once_lose_nothing(replicas):
    errors: list[str] = []

    def make(replica: Replica, side: int) -> None:
        for n in range(10):
            rule = {"id": f"r-{side}-{n}", "name": f"R {side} {n}", "expr": f"{DEPTH} > {n}"}
            answer = replica.call("POST", "/alerts/rules", json=rule)
            if answer.status_code != 201:
                errors.append(answer.text)

    threads = [threading.Thread(target=make, args=(r, i)) for i, r in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    time.sleep(1.2)
    for replica in replicas:
        ids = {r["id"] for r in replica.call("GET", "/alerts/rules").json()["rules"]}
        assert {f"r-{s}-{n}" for s in (0, 1) for n in range(10)} <= ids
    for replica in replicas:
        for side in (0, 1):
            for n in range(10):
                replica.call("DELETE", f"/alerts/rules/r-{side}-{n}")


def test_pushes_of_every_protocol_reach_the_server_and_counters_add_up_across_replicas(replicas, prometheus):
    one, two = replicas
    key = api_key(one.admin, one.url, ["ingest"])
    bearer = {"Authorization": f"Bearer {key}"}
    # The JSON push: a counter registered on one, increments sent to both, one running total.
    counter = {"name": "shop_checkouts_total", "type": "counter", "labels": ["shop"]}
    registered = requests.post(one.url + API + "/metrics/custom/register", json=counter, headers=bearer)
    assert registered.status_code == 201, registered.text
    for n, replica in enumerate([one, two, one, two]):
        replica.push({"name": "shop_checkouts_total", "labels": {"shop": "eu"}, "value": n + 1}, bearer)
    # OTLP with delta temporality: the SDK's increments, half to each replica.
    for replica, amount in ((one, 3), (two, 4)):
        exporter = OTLPMetricExporter(
            endpoint=replica.url + "/v1/metrics",
            headers=bearer,
            preferred_temporality={Counter: AggregationTemporality.DELTA},
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)  # flushed below
        meters = MeterProvider(resource=Resource.create({"service.name": "worker"}), metric_readers=[reader])
        meters.get_meter("worker").create_counter("jobs.done").add(amount)
        assert reader.force_flush()
        meters.shutdown()
    # InfluxDB line protocol through the InfluxDB client, and remote write, to the second replica.
    with InfluxDBClient(url=two.url, token=key, org="shop") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record="room temperature=21.5")
    body = write_request([("batch_size", (("job", "importer"),), [(time.time(), 512.0)])])
    answer = requests.post(
        two.url + "/api/v1/write", data=body, headers={**bearer, "Content-Encoding": "snappy"}, timeout=10
    )
    assert answer.status_code == 204, answer.text

    def value(selector: str) -> str | None:
        found = prometheus_query(prometheus, selector)
        return found[0]["value"][1] if found else None

    assert value('shop_checkouts_total{shop="eu"}') == "10"  # 1 + 2 + 3 + 4, wherever each was sent
    assert value("jobs_done_total") == "7"
    assert value("room_temperature") == "21.5"
    assert value('batch_size{job="importer"}') == "512"
    # A sample the server refuses (older than its head takes) is answered 400 with its reason.
    old = write_request([("batch_size", (("job", "importer"),), [(time.time() - 3 * 86400, 1.0)])])
    refused = requests.post(
        one.url + "/api/v1/write", data=old, headers={**bearer, "Content-Encoding": "snappy"}, timeout=10
    )
    assert refused.status_code == 400 and refused.json()["error"]


def _hooks(status: str) -> list[dict]:
    return [b for b in Hook.bodies if b["status"] == status and b["alerts"][0]["rule_id"] == "queue-deep"]


def _wait(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_each_change_is_told_once_and_after_a_kill_the_other_replica_tells_the_rest(replicas, hook):
    one, two = replicas
    Hook.bodies.clear()
    key = api_key(one.admin, one.url, ["ingest"])
    bearer = {"Authorization": f"Bearer {key}"}
    gauge = {"name": DEPTH, "type": "gauge"}
    registered = requests.post(one.url + API + "/metrics/custom/register", json=gauge, headers=bearer)
    assert registered.status_code in (200, 201), registered.text

    def push(replica: Replica, value: float) -> None:
        replica.push({"name": DEPTH, "value": value}, bearer)

    rule = {"id": "queue-deep", "name": "Queue deep", "expr": f"{DEPTH} > 10", "severity": "critical"}
    assert two.call("POST", "/alerts/rules", json=rule).status_code == 201
    push(two, 50)
    assert _wait(lambda: len(_hooks("firing")) >= 1, 20), Hook.bodies
    time.sleep(4)  # four more evaluations on each replica
    assert len(_hooks("firing")) == 1
    evaluating = [r for r in replicas if r.alerting()["evaluates_here"]]
    assert len(evaluating) == 1 and all(
        r.alerting()["evaluating_replica"] == evaluating[0].alerting()["replica"] for r in replicas
    )
    [survivor] = [r for r in replicas if r is not evaluating[0]]
    [shown] = [
        a for a in survivor.call("GET", "/alerts/active").json()["alerts"] if a["rule_id"] == "queue-deep"
    ]
    assert shown["state"] == "firing"
    # The replica that tells is killed; the other takes over within two evaluation intervals, tells
    # the resolution once, and the firing is not told again.
    stop(evaluating[0].proc, signal.SIGKILL)
    assert _wait(lambda: survivor.alerting()["evaluates_here"], 20)  # bench/takeover.py times it
    push(survivor, 1)
    assert _wait(lambda: len(_hooks("resolved")) >= 1, 20), Hook.bodies
    time.sleep(3)
    assert len(_hooks("firing")) == 1 and len(_hooks("resolved")) == 1
    assert "Traceback" not in output(survivor.proc)


def test_check_config_names_a_database_it_cannot_reach(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    unreachable = f"postgresql://pulseboard:secret@127.0.0.1:{free_port()}/pulseboard"
    result = subprocess.run(
        [sys.executable, "app.py", "check-config"],
        env={**environ, "PULSEBOARD_DATABASE__URL": unreachable},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "database.url: cannot open postgresql://pulseboard:***@127.0.0.1" in result.stderr
    assert "secret" not in result.stderr and "Connection refused" in result.stderr
    # A replica reading from Prometheus with no shared database is told what it will not share.
    alone = subprocess.run(
        [sys.executable, "app.py", "check-config"],
        env={
            **environ,
            "PULSEBOARD_SOURCE": "prometheus",
            "PULSEBOARD_PROMETHEUS_URL": "http://127.0.0.1:9090",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert alone.returncode == 0 and "note: database.url: not set" in alone.stdout
