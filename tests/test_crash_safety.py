"""Crash safety with the real server and real files: kill -9 keeps acknowledged pushes, damage is survived."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time

import requests

from dashboard_app.pages.panels import Window, render_panel
from dashboard_app.runtime import Runtime
from tests.servers import Pusher, free_port, quiet_settings, serving, start, stop, wait_http
from tsdb.archive import FILE
from tsdb.metrics import MetricSpec, Sample
from tsdb.store import HEAD_CHUNK

API = "/api/v1/monitoring"
JOBS = "jobs_done_total"


def test_every_acknowledged_push_survives_kill_9(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Flushing every minute: only the write a push makes before answering can keep its samples.
    env = {"PULSEBOARD_DEMO": "false", "PULSEBOARD_STORE__FLUSH_INTERVAL": "60"}
    proc = start(tmp_path, port, **env)
    try:
        wait_http(url + API + "/version", proc)
        body = {"name": JOBS, "type": "counter", "help": "Jobs done"}
        assert requests.post(url + API + "/metrics/custom/register", json=body, timeout=5).status_code == 201
        pusher = Pusher(url, JOBS)
        pusher.wait_for(2000)
        stop(proc, signal.SIGKILL)  # in the middle of the push loop
        acknowledged = pusher.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert acknowledged >= 2000

    proc = start(tmp_path, port, **env)
    try:
        wait_http(url + API + "/version", proc)
        [series] = requests.get(url + API + "/metrics/latest", params={"query": JOBS}, timeout=5).json()[
            "series"
        ]
        # Every acknowledged increment is there; at most the one batch in flight at the kill is extra.
        assert acknowledged <= series["value"] <= acknowledged + 50
    finally:
        stop(proc)


def test_a_damaged_chunk_is_reported_in_health_and_the_rest_of_the_history_served(tmp_path):
    settings = quiet_settings()
    first = Runtime(settings, tmp_path)
    now = time.time()
    cpu = "pulseboard_system_cpu_usage_ratio"
    first.store.append(Sample(cpu, (), 0.5, now - 900 + i) for i in range(HEAD_CHUNK))
    first.store.append(Sample(cpu, (), 0.7, now - 500 + i) for i in range(HEAD_CHUNK))
    first.stop()
    db = sqlite3.connect(tmp_path / "tsdb" / FILE)
    [(oldest,)] = db.execute("SELECT min(id) FROM chunks WHERE step = 0").fetchall()
    blob = bytearray(db.execute("SELECT data FROM chunks WHERE id = ?", (oldest,)).fetchone()[0])
    for i in range(12, min(len(blob), 40)):
        blob[i] ^= 0xFF  # bytes flipped inside the compressed samples
    db.execute("UPDATE chunks SET data = ? WHERE id = ?", (bytes(blob), oldest))
    db.commit()
    db.close()

    second = Runtime(settings, tmp_path)
    try:
        with serving(second) as pb:
            body = {"query": f"{cpu}[880s]", "time": now}  # the raw samples themselves
            answer = requests.post(pb.url + "/api/v1/query", data=body, timeout=10)
            assert answer.ok, answer.text
            values = [float(v) for _, v in answer.json()["data"]["result"][0]["values"]]
            assert values == [0.7] * HEAD_CHUNK  # the chunk that decodes
            health = pb.call("GET", "/metrics/health").json()
            assert health["status"] == "degraded"
            assert "damaged" in health["storage_problems"][0]
    finally:
        second.store.close()


def test_an_unreadable_store_file_is_moved_aside_and_pulseboard_starts(tmp_path):
    settings = quiet_settings()
    first = Runtime(settings, tmp_path)
    first.store.append([Sample("pulseboard_system_cpu_usage_ratio", (), 0.5, time.time())])
    first.stop()
    for leftover in (tmp_path / "tsdb").glob(FILE + "-*"):
        leftover.unlink()
    (tmp_path / "tsdb" / FILE).write_bytes(b"this is not a database" * 100)
    port = free_port()
    proc = start(tmp_path, port, PULSEBOARD_DEMO="false")
    try:
        wait_http(f"http://127.0.0.1:{port}{API}/version", proc)
        status = requests.get(f"http://127.0.0.1:{port}{API}/status", timeout=5).json()
        assert "moved to" in status["store"]["problems"][0]
        assert list(tmp_path.glob("tsdb.corrupt-*"))  # kept for a person to look at
    finally:
        stop(proc)


def test_damaged_files_of_metrics_rules_and_dashboards_do_not_stop_a_start(tmp_path):
    settings = quiet_settings()
    Runtime(settings, tmp_path).stop()
    (tmp_path / "custom_metrics.json").write_text('[{"name": "x", "ty')
    (tmp_path / "alert_rules.json").write_text("{not json")
    (tmp_path / "dashboards").mkdir(exist_ok=True)
    (tmp_path / "dashboards" / "mine.yaml").write_text("id: mine\ntitle: [unclosed\n")
    runtime = Runtime(settings, tmp_path)
    try:
        assert "executive" in runtime.dashboards and "mine" not in runtime.dashboards
        assert "high-cpu" in runtime.rules.rules
        assert "pulseboard_business_revenue_total" in runtime.metrics.definitions
        assert len(runtime.archive.problems) == 0 and len(runtime.problems) == 3
    finally:
        runtime.store.close()


def test_a_data_directory_that_cannot_be_written_answers_507_and_fires_an_alert(pulseboard):
    runtime = pulseboard.runtime
    body = {"name": "shop_orders_total", "type": "counter", "labels": ["order"]}
    assert pulseboard.call("POST", "/metrics/custom/register", body).status_code == 201
    first = [{"name": "shop_orders_total", "labels": {"order": "a"}, "value": 1}]
    assert pulseboard.call("POST", "/metrics/custom/record", {"samples": first}).ok
    runtime.scheduler.run_once("self")  # Pulseboard's own metrics, collected every few seconds
    shutil.rmtree(runtime.archive.directory)  # the disk under the data directory is gone
    many = [{"name": "shop_orders_total", "labels": {"order": str(i)}, "value": 1} for i in range(3000)]
    answer = pulseboard.call("POST", "/metrics/custom/record", {"samples": many})
    assert answer.status_code == 507 and "could not be written" in answer.json()["error"]
    latest = pulseboard.call("GET", "/metrics/latest", params={"query": 'shop_orders_total{order="a"}'})
    assert latest.json()["series"][0]["value"] == 1.0  # what was stored is still served
    runtime.scheduler.run_once("self")
    runtime.alerts.evaluate()
    firing = [a for a in runtime.alerts.active() if a["rule_id"] == "storage-failing"]
    assert firing and firing[0]["state"] == "firing"


class Sensor:
    """A collector whose source goes away and comes back, as a flaky device or endpoint does."""

    name = "sensor"
    metrics = (MetricSpec("pulseboard_system_sensor_ratio", "gauge", "ratio", "A sensor reading."),)

    def __init__(self):
        self.broken = False

    def collect(self):
        if self.broken:
            raise RuntimeError("sensor gone")
        return [Sample("pulseboard_system_sensor_ratio", (), 0.4, time.time())]


def test_a_failing_collector_is_named_on_its_panels_which_recover_by_themselves(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    sensor = Sensor()
    runtime.scheduler.collect(sensor, runtime.store, 1)
    board = {
        "id": "lab",
        "title": "Lab",
        "access": "operations",
        "panels": [
            {
                "id": "s",
                "title": "Sensor",
                "type": "line",
                "queries": [{"expr": "pulseboard_system_sensor_ratio"}],
            }
        ],
    }
    dashboard = runtime.dashboard_store.create(board)
    panel = dashboard.panels[0]

    def draw():
        now = time.time()
        return render_panel(
            runtime.source, panel, Window(now - 300, now), "light", 240, trouble=runtime.scheduler.trouble
        )

    runtime.scheduler.run_once("system")  # the other collectors go on whatever the sensor does
    sensor.broken = True
    runtime.scheduler.run_once("sensor")
    empty = draw()
    assert "Unavailable" in empty["layout"]["annotations"][0]["text"]
    assert (
        "sensor collector is failing: RuntimeError: sensor gone" in empty["layout"]["annotations"][0]["text"]
    )
    sensor.broken = False
    runtime.scheduler.run_once("sensor")
    runtime.scheduler.run_once("sensor")
    healthy = draw()
    assert healthy["data"] and "unavailable" not in (healthy["layout"].get("meta") or {})
    sensor.broken = True
    runtime.scheduler.run_once("sensor")
    stale = draw()
    assert stale["data"] and "not updating" in stale["layout"]["annotations"][-1]["text"]
    assert {j["name"]: j for j in runtime.scheduler.health()}["system"]["failures"] == 0
    runtime.store.close()
