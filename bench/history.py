"""Fifteen minutes of real host readings, taken once a (simulated) second, for benchmarks to start from."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.report import free_port, wait_for
from collectors.system import DiskUsageCollector, SystemCollector
from dashboard_app.runtime import Runtime
from dashboard_app.settings import load_settings
from tsdb.store import Store

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A clock the benchmark moves by hand."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def host_history(store: Store, clock: Clock, seconds: int) -> None:
    """Run the host collectors once per simulated second until the clock reaches now, flushing every
    5 s as a running Pulseboard does."""
    collectors = [SystemCollector(clock=clock), DiskUsageCollector(clock=clock)]
    for c in collectors:
        for spec in c.metrics:
            store.declare(spec)
    for second in range(seconds):
        for c in collectors:
            store.append(c.collect())
        if second % 5 == 4:
            store.flush()
        clock.now += 1


def prefill(data_dir: str | Path, seconds: int = 900) -> None:
    """Leave a data directory holding the last ``seconds`` of host history, as a running Pulseboard would."""
    clock = Clock(time.time() - seconds)
    runtime = Runtime(load_settings("development", environ={"PULSEBOARD_DEMO": "false"}), data_dir, clock)
    host_history(runtime.store, clock, seconds)
    runtime.stop()  # writes the snapshot the next start loads


@contextmanager
def deployed(seconds_of_history: int = 900, **settings: str):
    """Run Pulseboard as deployed (the README's gunicorn command, collecting every second) on a data
    directory holding ``seconds_of_history`` of host readings; yield its URL and process.

    ``settings`` are more PULSEBOARD_* variables, such as ``PULSEBOARD_SERVER__MAX_CONNECTIONS``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    with tempfile.TemporaryDirectory() as data_dir:
        prefill(data_dir, seconds_of_history)
        env.update(
            PULSEBOARD_ENV="development",
            PULSEBOARD_DATA_DIR=data_dir,
            PULSEBOARD_DEMO="false",
            PULSEBOARD_SYSTEM_INTERVAL="1",
            PULSEBOARD_STORE__RAW__RETENTION="1h",  # the production tiers, without its logins
            **settings,
        )
        command = [sys.executable, "-m", "gunicorn", "-c", "python:dashboard_app.production"]
        proc = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}", "app:server"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(url + "/api/v1/monitoring/dashboards/operations", "Pulseboard")
            yield url, proc
        finally:
            proc.terminate()
            proc.wait(20)
