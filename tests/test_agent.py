"""Agent mode as a host runs it: `python app.py agent`, only collectors and /metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import requests

from tests.servers import ROOT, free_port, stop, wait_http


def test_an_agent_exposes_this_hosts_metrics_and_nothing_else(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "agent", "--env", "production", "--port", str(port)],
        cwd=ROOT,
        env={**env, "PULSEBOARD_SYSTEM_INTERVAL": "1"},  # production, and yet no secrets: no pages to guard
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http(url + "/metrics", proc)
        deadline = time.monotonic() + 20
        text = ""
        while "pulseboard_system_cpu_usage_ratio " not in text and time.monotonic() < deadline:
            time.sleep(0.2)  # CPU shares need two readings, a second apart
            text = requests.get(url + "/metrics", timeout=5).text
        assert "pulseboard_system_cpu_usage_ratio " in text and "pulseboard_system_memory_used_bytes" in text
        assert "pulseboard_collector_failures_total" in text  # its own health too
        check = subprocess.run(
            [shutil.which("promtool"), "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert requests.get(url + "/operations", timeout=5).status_code == 404  # no pages
        assert requests.get(url + "/api/v1/monitoring/version", timeout=5).status_code == 404
    finally:
        stop(proc)


def test_a_store_without_an_archive_keeps_no_journal():
    from collectors.metrics import Sample
    from collectors.store import build_store
    from dashboard_app.settings import load_settings

    store = build_store(load_settings("production", environ={}), journal=False)
    store.append(Sample("m", (), float(i), 1_764_000_000.0 + i) for i in range(100))
    series, *_ = store.take_pending()
    assert series == [] and store.lookup("m", ()) is not None  # stored for queries, not kept for a disk
