"""`pulseboard backup` while the server runs and pushes arrive; a start on the copy serves the same."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from tests.servers import ROOT, Pusher, free_port, start, stop, wait_http

API = "/api/v1/monitoring"
JOBS = "jobs_done_total"
RULE = {
    "id": "jobs-stalled",
    "name": "Jobs stalled",
    "query": JOBS,
    "aggregation": "rate",
    "window": 300,
    "condition": "<",
    "threshold": 0.1,
    "for": 600,
    "severity": "warning",
}
DASHBOARD = {
    "id": "jobs",
    "title": "Jobs",
    "access": "operations",
    "panels": [
        {
            "id": "done",
            "title": "Jobs done",
            "type": "stat",
            "queries": [{"expr": JOBS, "agg": "last"}],
            "grid": {"x": 0, "y": 0, "w": 12, "h": 4},
        }
    ],
}


def backup(data_dir, target) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py", "backup", str(target), "--data-dir", str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_backup_taken_during_pushes_keeps_every_acknowledged_sample_and_the_rest(tmp_path):
    data, copy = tmp_path / "data", tmp_path / "copy"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Flushing every minute: only the write a push makes before answering can keep its samples.
    env = {"PULSEBOARD_DEMO": "false", "PULSEBOARD_STORE__FLUSH_INTERVAL": "60"}
    proc = start(data, port, **env)
    try:
        wait_http(url + API + "/version", proc)
        body = {"name": JOBS, "type": "counter", "help": "Jobs done"}
        assert requests.post(url + API + "/metrics/custom/register", json=body, timeout=5).status_code == 201
        assert requests.post(url + API + "/alerts/rules", json=RULE, timeout=5).status_code == 201
        assert requests.post(url + API + "/dashboards/create", json=DASHBOARD, timeout=5).status_code == 201
        pusher = Pusher(url, JOBS)
        before = pusher.wait_for(1000)  # acknowledged before the backup began: all must be in the copy
        done = backup(data, copy)
        after = pusher.acknowledged
        time.sleep(0.5)  # pushes go on after the copy
        acknowledged = pusher.stop()
        assert done.returncode == 0, done.stderr
        assert "backed up" in done.stdout
        assert backup(data, copy).returncode == 1  # never over an earlier backup
    finally:
        stop(proc)
    assert after > before  # pushes were arriving while the copy was taken
    assert acknowledged > after

    restored_port = free_port()
    restored = f"http://127.0.0.1:{restored_port}"
    proc = start(copy, restored_port, **env)
    try:
        wait_http(restored + API + "/version", proc)
        [series] = requests.get(restored + API + "/metrics/latest", params={"query": JOBS}, timeout=5).json()[
            "series"
        ]
        # Every sample acknowledged before the backup began, and nothing acknowledged after it ended.
        assert before <= series["value"] <= after + 50
        rules = requests.get(restored + API + "/alerts/rules", timeout=5).json()["rules"]
        assert "jobs-stalled" in {r["id"] for r in rules}
        shown = requests.get(restored + API + "/dashboards/jobs", timeout=5)
        assert shown.status_code == 200 and shown.json()["dashboard"]["title"] == "Jobs"
    finally:
        stop(proc)


def test_a_backup_refuses_a_missing_data_directory_by_name(tmp_path):
    done = backup(tmp_path / "nowhere", tmp_path / "copy")
    assert done.returncode == 1 and f"{tmp_path / 'nowhere'}: no such data directory" in done.stderr


def test_a_backup_says_where_a_postgresql_state_database_is_and_how_to_back_it_up(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "custom_metrics.json").write_text("[]")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    environ["PULSEBOARD_DATABASE__URL"] = "postgresql://pulseboard:secret@db.internal:5433/pulseboard"
    done = subprocess.run(
        [sys.executable, "app.py", "backup", str(tmp_path / "copy"), "--data-dir", str(data)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "PostgreSQL pulseboard on db.internal:5433" in done.stdout and "pg_dump -Fc" in done.stdout
    assert "secret" not in done.stdout
