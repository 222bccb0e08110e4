"""Pulseboard as a newcomer runs it: `python app.py`, real HTTP, real files, stop and start again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard_app.runtime import Runtime
from dashboard_app.settings import load_settings
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CPU = "pulseboard_system_cpu_usage_ratio"


def start(data_dir: Path, port: int, **env) -> subprocess.Popen:
    environ = {
        **os.environ,
        "PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL": "1",
        "PULSEBOARD_STORE__FLUSH_INTERVAL": "1",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"Pulseboard exited early:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no answer from {url}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


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
    output = proc.stdout.read()
    assert "PULSEBOARD_DASHBOARDS__REFRESH" in output and "0, 1, 5 or 30" in output


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
