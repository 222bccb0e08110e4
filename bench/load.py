"""Load test: 100 live viewers and a push stream of 10,000 samples/s against `python app.py`, on 127.0.0.1.

Run with `python -m bench.load [--seconds 300]`. It reports errors, push latency percentiles and the
server's RSS and CPU over time, then stops the server it started.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

import requests
from simple_websocket import Client

from bench.ingest import API, Server, cpu_seconds
from bench.report import print_results


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(seconds: float, viewers: int = 100, rate: int = 10_000, batch: int = 1000) -> dict:
    server = Server(
        PULSEBOARD_SERVER__MAX_CONNECTIONS=str(viewers + 10),
        PULSEBOARD_DASHBOARDS__REFRESH="1",
        PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL="1",
        PULSEBOARD_INGEST__SERIES_CAP="100000",
    )
    stop = threading.Event()
    errors: list[str] = []
    latencies: list[float] = []
    updates = [0] * viewers
    samples_sent = [0]
    try:
        body = {"name": "load_events_total", "type": "counter", "labels": ["source"]}
        server.session().post(
            server.url + API + "/metrics/custom/register", json=body, timeout=10
        ).raise_for_status()
        url = server.url.replace("http://", "ws://") + API + "/ws/dashboard/operations"
        sockets = [Client.connect(url, headers=server.headers) for _ in range(viewers)]

        def view(i: int, ws: Client) -> None:
            last_ping = time.monotonic()
            while not stop.is_set():
                try:
                    if ws.receive(timeout=0.5) is not None:
                        updates[i] += 1
                    if time.monotonic() - last_ping > 30:
                        ws.send(json.dumps({"type": "ping"}))
                        last_ping = time.monotonic()
                except Exception as exc:
                    if not stop.is_set():  # closing at the end is not an error
                        errors.append(f"viewer {i}: {exc}")
                    return

        def push(worker: int, per_second: int) -> None:
            session = server.session()
            interval = batch / per_second
            next_at = time.monotonic()
            while not stop.is_set():
                samples = [
                    {"name": "load_events_total", "labels": {"source": f"s{worker}-{j % 50}"}, "value": 1}
                    for j in range(batch)
                ]
                t0 = time.perf_counter()
                try:
                    r = session.post(
                        server.url + API + "/metrics/custom/record", json={"samples": samples}, timeout=10
                    )
                    if not r.ok:
                        errors.append(f"push {r.status_code}: {r.text[:100]}")
                    else:
                        samples_sent[0] += batch
                except requests.RequestException as exc:
                    errors.append(f"push: {exc}")
                latencies.append(time.perf_counter() - t0)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

        threads = [threading.Thread(target=view, args=(i, ws), daemon=True) for i, ws in enumerate(sockets)]
        threads += [threading.Thread(target=push, args=(w, rate // 2), daemon=True) for w in range(2)]
        for t in threads:
            t.start()
        rss, cpu0, t0 = [], cpu_seconds(server.proc.pid), time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(min(10, seconds))
            rss.append(round(rss_mib(server.proc.pid)))
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(server.proc.pid) - cpu0
        stop.set()
        for ws in sockets:
            ws.close()
        latencies.sort()
        return {
            "seconds": elapsed,
            "viewers": viewers,
            "updates_per_viewer_per_second": sum(updates) / viewers / elapsed,
            "samples_per_second": samples_sent[0] / elapsed,
            "push_p50_ms": statistics.median(latencies) * 1000,
            "push_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "errors": len(errors),
            "server_cpu_percent_of_one_core": cpu / elapsed * 100,
            "rss_mib_every_10_s": " ".join(map(str, rss)),
        }
    finally:
        stop.set()
        server.stop()
        for e in errors[:5]:
            print("error:", e)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()
    print_results({"load: 100 viewers + 10,000 samples/s": run(args.seconds)})


if __name__ == "__main__":
    main()
