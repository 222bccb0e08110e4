"""Pulseboard beside Glances and Netdata on this machine: collection overhead and memory, same run.

Every process collects once a second and is scraped once a second through three measured
half-minutes (the median is reported), so each one's whole stack (collection, storage,
exposition) is counted. Netdata also serves 100 viewers of the charts the operations dashboard
shows. Run inside a network namespace with only loopback (``make bench`` does), since the peers
reach out to the internet.

    unshare -n sh -c 'ip link set lo up && exec python -m bench.peers'
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

from bench.report import free_port, wait_for
from bench.tabs import run_tabs

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 15.0
WINDOW = 30.0  # seconds per measured window
WINDOWS = 3


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


# The Netdata charts that show what the operations dashboard shows (those this host has).
NETDATA_CHARTS = (
    "system.cpu",
    "system.ram",
    "mem.swap",
    "system.swap",
    "disk_space./",
    "system.load",
    "system.uptime",
    "system.io",
    "system.net",
    "system.processes",
    "system.active_processes",
    "mem.available",
)


def netdata_viewers(base: str, viewers: int = 100, seconds: float = 120, refresh: float = 5.0) -> dict:
    """Viewers of Netdata's dashboard showing the same charts: each refresh fetches every chart's
    last 15 minutes at 240 points, gzip accepted, as its dashboard does chart by chart."""
    known = requests.get(f"{base}/api/v1/charts", timeout=10).json()["charts"]
    charts = [c for c in NETDATA_CHARTS if c in known] + [c for c in known if c.startswith("cpu.cpu")]
    urls = [f"{base}/api/v1/data?chart={c}&after=-900&points=240&group=average&format=json" for c in charts]

    def tab():
        async def fetch_all(http, _n: int) -> int:
            wire = 0
            for url in urls:
                async with http.get(url, headers={"Accept-Encoding": "gzip"}) as r:
                    r.raise_for_status()
                    wire += len(await r.read())  # as sent: compressed
            return wire

        return fetch_all

    out = run_tabs(tab, viewers, seconds, refresh).summary()
    return {"charts": len(urls), **out}


@contextmanager
def running(argv: list[str], env: dict | None = None):
    """Run a process (and whatever it forks) for the ``with`` block; yield it, then stop them all."""
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def netdata_argv(port: int) -> list[str]:
    """Netdata with its packaged configuration (1 s collection), in the foreground, on a port."""
    return [shutil.which("netdata") or "/usr/sbin/netdata", "-D", "-p", str(port)]


def viewers_of(watched: psutil.Process, base: str, run, **options) -> dict:
    """Return ``run(base, **options)`` with the CPU the watched process tree spent meanwhile."""
    c0, t0 = tree_cpu(watched), time.monotonic()
    out = run(base, **options)
    out["cpu_percent_of_one_core"] = (tree_cpu(watched) - c0) / (time.monotonic() - t0) * 100
    return out


def measure(name: str, argv: list[str], scrape_url: str | None, env: dict | None = None, then=None) -> dict:
    """Start a process, scrape it each second (unless ``scrape_url`` is None) through a warm-up and
    the measured windows, run ``then`` (given the base URL) if set, and stop it."""
    with running(argv, env) as proc:
        watched = psutil.Process(proc.pid)
        if scrape_url is not None:
            wait_for(scrape_url, name)
        sizes = [0]
        scraper = requests.Session()  # the connection kept where the server allows, as Prometheus does

        def scrape_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            if scrape_url is None:  # a process nobody scrapes: only its own work is measured
                time.sleep(seconds)
            while scrape_url is not None and time.monotonic() < end:
                tick = time.monotonic()
                sizes.append(len(scraper.get(scrape_url, timeout=5).content))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

        scrape_for(WARMUP)
        shares = []  # CPU seconds per second in each window; the median is reported
        for _ in range(WINDOWS):
            c0, t0 = tree_cpu(watched), time.monotonic()
            scrape_for(WINDOW)
            shares.append((tree_cpu(watched) - c0) / (time.monotonic() - t0))
        share = statistics.median(shares)
        out = {
            "cpu_seconds_per_minute": share * 60,
            "percent_of_one_core": share * 100,
            "windows": len(shares),
            "rss_mib": tree_rss(watched) / 2**20,
            "exposition_kib": sizes[-1] / 1024,
        }
        if then is not None:
            out["viewers"] = viewers_of(watched, scrape_url.split("/api/")[0].split("/metrics")[0], then)
        return out


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
    url = f"http://127.0.0.1:{port}/api/v1/allmetrics?format=prometheus"
    return measure("netdata", netdata_argv(port), url, then=netdata_viewers)


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
