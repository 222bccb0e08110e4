"""Pulseboard beside Glances and Netdata on this machine: collection overhead and memory, same run.

Every process collects once a second and is scraped once a second for the measured minute, so
each one's whole stack (collection, storage, exposition) is counted. Run inside a network
namespace with only loopback (``make bench`` does), since the peers reach out to the internet.

    unshare -n sh -c 'ip link set lo up && exec python -m bench.peers'
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from bench.report import free_port

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 15.0
WINDOW = 60.0


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds a process and its descendants have used, reaped children included."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and its descendants."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(name: str, argv: list[str], scrape_url: str, env: dict | None = None) -> dict:
    """Start a process, scrape it each second through a warm-up and a measured minute; stop it."""
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    watched = psutil.Process(proc.pid)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(scrape_url, timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"{name} did not answer at {scrape_url}")
        sizes = []

        def scrape_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                tick = time.monotonic()
                sizes.append(len(requests.get(scrape_url, timeout=5).content))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

        scrape_for(WARMUP)
        c0, t0 = tree_cpu(watched), time.monotonic()
        scrape_for(WINDOW)
        used, elapsed = tree_cpu(watched) - c0, time.monotonic() - t0
        return {
            "cpu_seconds_per_minute": used * 60 / elapsed,
            "percent_of_one_core": used / elapsed * 100,
            "rss_mib": tree_rss(watched) / 2**20,
            "exposition_kib": sizes[-1] / 1024,
        }
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def pulseboard_app(data_dir: str) -> dict:
    """The whole app (pages idle, alerts, self-instrumentation, disk flushes) collecting every second."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    env.update(PULSEBOARD_SYSTEM_INTERVAL="1", PULSEBOARD_DEMO="false")
    argv = [sys.executable, "app.py", "--port", str(port), "--data-dir", data_dir]
    return measure("pulseboard", argv, f"http://127.0.0.1:{port}/metrics", env)


def pulseboard_agent() -> dict:
    """Agent mode: collectors, the in-memory store and /metrics, as each host runs it when scaled out."""
    port = free_port()
    argv = [sys.executable, "app.py", "agent", "--port", str(port)]
    return measure(
        "pulseboard agent", argv, f"http://127.0.0.1:{port}/metrics", {"PULSEBOARD_SYSTEM_INTERVAL": "1"}
    )


def glances() -> dict:
    """Glances with its Prometheus exporter, refreshing every second."""
    port = free_port()
    config = Path(tempfile.mkdtemp()) / "glances.conf"
    config.write_text(f"[prometheus]\nhost=127.0.0.1\nport={port}\nprefix=glances\n")
    argv = [
        shutil.which("glances") or "glances",
        "-C",
        str(config),
        "--export",
        "prometheus",
        "-t",
        "1",
        "--quiet",
        "--disable-check-update",
    ]
    return measure("glances", argv, f"http://127.0.0.1:{port}/metrics")


def netdata() -> dict:
    """Netdata with its packaged configuration (1 s collection), in the foreground."""
    port = free_port()
    argv = [shutil.which("netdata") or "/usr/sbin/netdata", "-D", "-p", str(port)]
    return measure("netdata", argv, f"http://127.0.0.1:{port}/api/v1/allmetrics?format=prometheus")


def memory_filled() -> dict:
    """RSS of a Pulseboard process holding 1,000 series at production retention, every tier full."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.fill"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as data_dir:
        results["pulseboard"] = pulseboard_app(data_dir)
    results["pulseboard_agent"] = pulseboard_agent()
    results["glances"] = glances()
    results["netdata"] = netdata()
    results["pulseboard_filled"] = memory_filled()
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
