"""Benchmarks for ingest and export: HTTP push throughput, /metrics with 10,000 series, live fan-out.

Run with `make bench` (or `python -m bench.ingest`); it prints a Markdown table. Push and fan-out
run against `python app.py --env production` in a child process, as users run it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
from simple_websocket import Client

from bench.report import free_port, print_results
from dashboard_app.api.exposition import render
from dashboard_app.settings import load_settings
from dashboard_app.sources.source import EmbeddedSource
from tsdb.metrics import MetricSpec, Sample
from tsdb.store import build_store

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1/monitoring"


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and of the children it runs now (the server's worker), from /proc."""
    total = 0.0
    for one in [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]:
        with open(f"/proc/{one}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


ADMIN_PASSWORD = secrets.token_urlsafe(18)


class Server:
    """`python app.py` in production settings (logins and keys on), without the demo, on a free port.

    ``headers`` carries an API key with every scope, made by the admin through the API.
    """

    def __init__(self, root: Path | str | None = None, **env: str):
        """``root``: the checkout to run (another commit's worktree, to measure old code beside new)."""
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory()
        environ = {
            **os.environ,
            "PULSEBOARD_DEMO": "false",
            "PULSEBOARD_SECRET_KEY": secrets.token_urlsafe(48),
            "PULSEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **env,
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "app.py",
                "--env",
                "production",
                "--port",
                str(self.port),
                "--data-dir",
                self.dir.name,
            ],
            cwd=root or ROOT,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/login", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError("Pulseboard did not start")
        admin = requests.Session()
        admin.headers["Origin"] = self.url
        admin.post(self.url + "/login", data={"user": "admin", "password": ADMIN_PASSWORD}, timeout=10)
        made = admin.post(
            self.url + API + "/keys", json={"name": "bench", "scopes": ["ingest", "read", "admin"]}
        )
        made.raise_for_status()
        self.headers = {"Authorization": f"Bearer {made.json()['key']}"}

    def session(self) -> requests.Session:
        """Return an HTTP session that sends the key."""
        http = requests.Session()
        http.headers.update(self.headers)
        return http

    def record(self, http: requests.Session, samples: list[dict]) -> None:
        """Push samples through the JSON push, as one request; raise on a refusal."""
        answer = http.post(
            self.url + API + "/metrics/custom/record",
            data=json.dumps({"samples": samples}),
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        answer.raise_for_status()

    def rss(self) -> int:
        """Resident memory of the server's process tree (gunicorn's master and worker)."""
        tree = psutil.Process(self.proc.pid)
        return sum(p.memory_info().rss for p in [tree, *tree.children(recursive=True)])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.dir.cleanup()


def push_throughput(batches: int = 200, batch: int = 1000, clients: int = 2) -> dict:
    """Samples per second pushed over HTTP in batches of 1,000 by a few concurrent clients."""
    server = Server()
    try:
        session = server.session()
        body = {"name": "bench_requests_total", "type": "counter", "labels": ["route", "worker"]}
        session.post(server.url + API + "/metrics/custom/register", json=body).raise_for_status()
        t_start = time.time() - 3000

        def payload(client: int, k: int) -> bytes:
            samples = [
                {
                    "name": "bench_requests_total",
                    "labels": {"route": f"/r{j % 100}", "worker": str(client)},
                    "value": 1,
                    "timestamp": t_start + k + j // 100 * 0.01,
                }
                for j in range(batch)
            ]
            return json.dumps({"samples": samples}).encode()

        prepared = [[payload(c, k) for k in range(batches // clients)] for c in range(clients)]
        latencies: list[float] = []

        def run(bodies: list[bytes]) -> None:
            s = server.session()
            for data in bodies:
                t0 = time.perf_counter()
                r = s.post(
                    server.url + API + "/metrics/custom/record",
                    data=data,
                    headers={"Content-Type": "application/json"},
                )
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()

        threads = [threading.Thread(target=run, args=(bodies,)) for bodies in prepared]
        cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(server.proc.pid) - cpu0
        latencies.sort()
        return {
            "samples_per_second": batches * batch / elapsed,
            "clients": clients,
            "request_p50_ms": statistics.median(latencies) * 1000,
            "request_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "server_cpu_ms_per_1k_samples": cpu / (batches * batch) * 1e6,
        }
    finally:
        server.stop()


def exposition_time(series: int = 10_000, runs: int = 20) -> dict:
    """Milliseconds to render /metrics for 10,000 series."""
    store = build_store(load_settings("production", environ={}))
    store.declare(MetricSpec("bench_gauge", "gauge", "none", "A benchmark gauge."))
    store.declare(MetricSpec("bench_events_total", "counter", "count", "A benchmark counter."))
    now = time.time()
    store.append(
        Sample(
            "bench_gauge" if i % 2 else "bench_events_total", (("host", f"h{i % 100}"), ("i", str(i))), i, now
        )
        for i in range(series)
    )
    source = EmbeddedSource(store)
    timings, size = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        size = len(render(source, store.specs).get_data())
        timings.append(time.perf_counter() - t0)
    return {"series": series, "median_ms": statistics.median(timings) * 1000, "bytes": size}


def websocket_fanout(clients: int = 100, seconds: float = 30.0) -> dict:
    """Server CPU while 100 viewers of /operations get an update every second."""
    server = Server(
        PULSEBOARD_SERVER__MAX_CONNECTIONS=str(clients),
        PULSEBOARD_DASHBOARDS__REFRESH="1",
        PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL="1",
    )
    received = [0] * clients
    stop = threading.Event()
    try:
        url = server.url.replace("http://", "ws://") + API + "/ws/dashboard/operations"
        sockets = [Client.connect(url, headers=server.headers) for _ in range(clients)]

        def drain(i: int, ws: Client) -> None:
            while not stop.is_set():
                try:
                    if ws.receive(timeout=0.5) is not None:
                        received[i] += 1
                except Exception:
                    return

        readers = [threading.Thread(target=drain, args=(i, ws), daemon=True) for i, ws in enumerate(sockets)]
        for r in readers:
            r.start()
        time.sleep(3)  # every viewer has its history
        before = sum(received)
        cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
        time.sleep(seconds)
        cpu, elapsed = cpu_seconds(server.proc.pid) - cpu0, time.perf_counter() - t0
        messages = sum(received) - before
        stop.set()
        for ws in sockets:
            ws.close()
        return {
            "clients": clients,
            "updates_per_client_per_second": messages / clients / elapsed,
            "server_percent_of_one_core": cpu / elapsed * 100,
        }
    finally:
        stop.set()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fanout-seconds", type=float, default=30.0)
    args = parser.parse_args()
    results = {
        "HTTP push, batches of 1,000": push_throughput(),
        "/metrics exposition, 10,000 series": exposition_time(),
        "WebSocket fan-out, 100 viewers at 1 s": websocket_fanout(seconds=args.fanout_seconds),
    }
    print_results(results)


if __name__ == "__main__":
    main()
