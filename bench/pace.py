"""Ingest at Prometheus's pace: samples/s acknowledged by remote write, OTLP and the JSON push, beside
Prometheus 2.42's own remote-write receiver fed the same bodies by the same client, in the same run.

Run with `python -m bench.pace [--runs 3] [--rounds 40]`; it prints a Markdown table. The samples are
what one Prometheus scraping 10,000 series sends on: 100 metric names of 100 series each (``job``,
``instance``, ``series`` labels), one sample of every series a round (15 s apart), split over four
shards by series as Prometheus's remote-write queue splits them; each shard sends its samples in time
order, 500 to a request (Prometheus 2.42's ``max_samples_per_send``), over its own keep-alive connection.
Pulseboard runs as the README's production command (`python app.py --env production`) with an ingest
key; a request counts when it is acknowledged (2xx), which for Pulseboard means written to the data
directory. OTLP and the JSON push carry the same series, batch sizes and times, to a fresh server each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import cramjam
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from bench import protocols
from bench.ingest import API, Server, cpu_seconds
from ingest.prompb.remote_pb2 import WriteRequest

NAMES, PER_NAME = 100, 100  # 10,000 series
SHARDS = 4
BATCH = 500
STEP = 15.0


def series() -> list[tuple[str, dict[str, str]]]:
    return [
        (f"bench_metric_{n:03d}", {"job": "node", "instance": f"host-{k % 10}:9100", "series": str(k)})
        for n in range(NAMES)
        for k in range(PER_NAME)
    ]


def shard_batches(rounds: int, start: float) -> list[list[list[tuple[int, float, float]]]]:
    """For each shard, its requests: lists of (series index, time, value) in time order per series."""
    everything = series()
    shards: list[list[tuple[int, float, float]]] = [[] for _ in range(SHARDS)]
    for r in range(rounds):
        t = start + r * STEP
        for i in range(len(everything)):
            shards[(i * 2654435761 >> 7) % SHARDS].append((i, t, float(r * 10 + i % 7)))
    return [[shard[k : k + BATCH] for k in range(0, len(shard), BATCH)] for shard in shards]


def remote_write_body(batch, everything) -> bytes:
    request = WriteRequest()
    for i, t, v in batch:
        name, labels = everything[i]
        ts = request.timeseries.add()
        ts.labels.add(name="__name__", value=name)
        for key, value in sorted(labels.items()):
            ts.labels.add(name=key, value=value)
        ts.samples.add(value=v, timestamp=int(t * 1000))
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def otlp_body(batch, everything) -> bytes:
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    metrics = {}
    for i, t, v in batch:
        name, labels = everything[i]
        metric = metrics.get(name)
        if metric is None:
            metric = metrics[name] = scope.metrics.add()
            metric.name = name
        point = metric.gauge.data_points.add()
        point.time_unix_nano = int(t * 1e9)
        point.as_double = v
        for key, value in labels.items():
            attribute = point.attributes.add()
            attribute.key, attribute.value.string_value = key, value
    return request.SerializeToString()


def json_body(batch, everything) -> bytes:
    samples = []
    for i, t, v in batch:
        name, labels = everything[i]
        samples.append({"name": name, "labels": labels, "value": v, "timestamp": t})
    return json.dumps({"samples": samples}).encode()


MAKERS = {"remote write": remote_write_body, "OTLP/HTTP": otlp_body, "JSON push": json_body}
# name -> (path, headers, body maker): the endpoints and headers bench.protocols sends to
PROTOCOLS = {name: (path, headers, MAKERS[name]) for name, (path, headers, _) in protocols.PROTOCOLS.items()}


def send(url: str, path: str, headers: dict, shards: list[list[bytes]], pid: int | None) -> dict:
    """Send each shard's bodies in order over one keep-alive connection per shard; samples/s acknowledged."""
    where = urlsplit(url)
    latencies: list[float] = []
    failures: list[str] = []

    def run(bodies: list[bytes]) -> None:
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
        for body in bodies:
            t0 = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            answer = conn.getresponse()
            text = answer.read()
            latencies.append(time.perf_counter() - t0)
            if answer.status >= 300:
                failures.append(f"{answer.status} {text[:300]!r}")
                return
        conn.close()

    threads = [threading.Thread(target=run, args=(bodies,)) for bodies in shards]
    cpu0 = cpu_seconds(pid) if pid else 0.0
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) - cpu0) if pid else float("nan")
    if failures:
        raise RuntimeError(f"{len(failures)} requests refused, the first: {failures[0]}")
    latencies.sort()
    count = len(latencies) * BATCH
    return {
        "samples_per_second": count / elapsed,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "cpu_us_per_sample": cpu / count * 1e6,
    }


def pulseboard(protocol: str, server: Server, rounds: int, start: float) -> dict:
    path, headers, make = PROTOCOLS[protocol]
    everything = series()
    if protocol == "JSON push":
        http = server.session()
        for name in sorted({name for name, _ in everything}):
            body = {"name": name, "type": "gauge", "labels": ["instance", "job", "series"]}
            http.post(server.url + API + "/metrics/custom/register", json=body).raise_for_status()
    bodies = [[make(b, everything) for b in shard] for shard in shard_batches(rounds, start)]
    return send(server.url, path, {**headers, **server.headers}, bodies, server.proc.pid)


def one_run(rounds: int, root: str | None) -> dict:
    start = time.time() - rounds * STEP - 60
    everything = series()
    bodies = [[remote_write_body(b, everything) for b in shard] for shard in shard_batches(rounds, start)]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = protocols.prometheus(Path(tmp), "--web.enable-remote-write-receiver")
        try:
            out["Prometheus"] = send(url, "/api/v1/write", PROTOCOLS["remote write"][1], bodies, proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    for protocol in PROTOCOLS:
        server = Server(root)
        try:
            out[protocol] = pulseboard(protocol, server, rounds, start)
            answer = requests.get(
                server.url + "/api/v1/query",
                params={"query": 'count({__name__=~"bench_metric_.*"})'},
                headers=server.headers,
                timeout=30,
            ).json()
            out[protocol]["series"] = int(answer["data"]["result"][0]["value"][1])
        finally:
            server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=40, help="samples per series (10,000 series)")
    parser.add_argument("--root", help="another checkout to run as Pulseboard")
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        raise SystemExit("prometheus is not installed (apt install prometheus)")
    runs = [one_run(args.rounds, args.root) for _ in range(args.runs)]
    print(json.dumps(runs, indent=1))
    print("| protocol | samples/s acknowledged | p99 of a request | server CPU per sample | ÷ Prometheus |")
    print("|---|---|---|---|---|")
    for name in ["Prometheus", *PROTOCOLS]:
        rate = [r[name]["samples_per_second"] for r in runs]
        p99 = [r[name]["p99_ms"] for r in runs]
        cpu = [r[name]["cpu_us_per_sample"] for r in runs]
        ratio = [r[name]["samples_per_second"] / r["Prometheus"]["samples_per_second"] for r in runs]
        print(
            f"| {name} | {min(rate):,.0f}–{max(rate):,.0f} | {min(p99):.0f}–{max(p99):.0f} ms "
            f"| {min(cpu):.1f}–{max(cpu):.1f} µs | {min(ratio):.2f}–{max(ratio):.2f}× |"
        )


if __name__ == "__main__":
    main()
