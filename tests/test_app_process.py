"""Pulseboard as a newcomer runs it: `python app.py`, real HTTP, real files, stop and start again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard_app.runtime import Runtime
from dashboard_app.settings import load_settings
from tests.servers import ROOT, free_port, output, start, stop, wait_http

CPU = "pulseboard_system_cpu_usage_ratio"


def history(data_dir: Path) -> list[float]:
    """Return the timestamps of CPU samples kept in a data directory."""
    runtime = Runtime(load_settings("development", environ={}), data_dir)
    try:
        (series,) = runtime.store.series(CPU)
        ts, _ = runtime.store.read_raw(series.id, 0, time.time())
        return ts.tolist()
    finally:
        runtime.archive.close()


@pytest.fixture
def port() -> int:
    return free_port()


def test_help_explains_every_option():
    out = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for option in ("--env", "--host", "--port", "--data-dir", "development", "staging", "production"):
        assert option in out.stdout


def test_a_bad_setting_stops_start_up_and_says_which(tmp_path, port):
    proc = start(tmp_path, port, PULSEBOARD_DASHBOARDS__REFRESH="7")
    assert proc.wait(timeout=30) == 2
    printed = output(proc)
    assert "PULSEBOARD_DASHBOARDS__REFRESH" in printed and "0, 1, 5 or 30" in printed


def test_history_survives_a_stop_and_a_start(tmp_path, port):
    proc = start(tmp_path, port)
    assert wait_http(f"http://127.0.0.1:{port}/operations", proc) == 200
    time.sleep(4)
    assert stop(proc) == 0
    before = history(tmp_path)
    assert len(before) >= 2

    proc = start(tmp_path, port)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/operations", proc) == 200
        time.sleep(3)
    finally:
        stop(proc)
    after = history(tmp_path)
    assert set(before) <= set(after)  # nothing from the first run was lost
    assert max(after) > max(before)  # and the second run added its own


def test_samples_flushed_before_a_kill_survive_it(tmp_path, port):
    proc = start(tmp_path, port)
    assert wait_http(f"http://127.0.0.1:{port}/operations", proc) == 200
    time.sleep(4)  # several flushes at the 1 s flush interval
    stop(proc, signal.SIGKILL)
    assert len(history(tmp_path)) >= 2


def test_the_home_page_opens_the_operations_dashboard(tmp_path, port):
    proc = start(tmp_path, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/operations", proc)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/")
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(request, timeout=5)
        assert redirect.value.code == 302
        assert redirect.value.headers["Location"].endswith("/operations")
    finally:
        stop(proc)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
