"""Agent mode as a host runs it: `python app.py agent`, only collectors and /metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import requests

from tests.servers import free_port, launch, stop, wait_http


def test_an_agent_exposes_this_hosts_metrics_and_nothing_else(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    proc = launch(
        [sys.executable, "app.py", "agent", "--env", "production", "--port", str(port)],
        {**env, "PULSEBOARD_SYSTEM_INTERVAL": "1"},  # production, and yet no secrets: no pages to guard
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


def test_a_store_without_a_data_directory_keeps_no_log_and_stays_small():
    from dashboard_app.settings import load_settings
    from tsdb.metrics import Sample
    from tsdb.store import build_store

    now = time.time()
    store = build_store(load_settings("production", environ={}))
    assert not store.journal
    for second in range(600):
        store.append(Sample("m", (("core", str(c)),), float(second), now - 600 + second) for c in range(60))
        if second % 5 == 0:
            store.flush()
    store.flush()
    parts = store.memory_parts()
    assert parts["waiting"] == 0  # nothing piles up for a disk that is not there
    [series] = [s for s in store.series("m") if s.label_dict == {"core": "0"}]
    assert store.read_raw(series.id, 0, now)[1].tolist() == [float(s) for s in range(600)]


def _without_process(text: str) -> list[str]:
    return [line for line in text.splitlines() if "process_" not in line and line != "# EOF"]


def test_the_agents_held_exposition_is_what_a_fresh_collection_gives():
    from collectors.system import SystemCollector
    from dashboard_app.agent import Agent
    from dashboard_app.api.exposition import render
    from dashboard_app.settings import load_settings

    agent = Agent(load_settings("production", environ={}))
    collector = SystemCollector()
    for _ in range(2):  # CPU shares need two readings
        agent.store.append(collector.collect())
        time.sleep(0.05)
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        held = agent.exposition.response(accept).get_data(as_text=True)
        again = agent.exposition.response(accept).get_data(as_text=True)  # from what is held
        fresh = render(agent.source, agent.store.specs, accept, process=True).get_data(as_text=True)
        assert _without_process(held) == _without_process(again) == _without_process(fresh)
        assert "pulseboard_system_memory_used_bytes" in held and "process_cpu_seconds_total" in held
        assert held.endswith("# EOF\n") == fresh.endswith("# EOF\n")
    before = agent.exposition.response("").get_data(as_text=True)
    agent.store.append(collector.collect())  # a new collection: what is held is made again
    after = agent.exposition.response("").get_data(as_text=True)
    fresh = render(agent.source, agent.store.specs, "", process=True).get_data(as_text=True)
    assert _without_process(after) == _without_process(fresh)
    assert _without_process(after) != _without_process(before)  # uptime and CPU moved on
