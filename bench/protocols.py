"""Protocols in and out: ingest samples/s by remote write, OTLP and the JSON push in the same run, and
``query_range`` of ``sum by (mode) (rate(node_cpu_seconds_total[5m]))`` over 24 h, Pulseboard against
Prometheus on the same samples.

Run with `python -m bench.protocols [--runs 3]`; it prints a Markdown table. Pulseboard runs as
`python app.py --env production` (its raw tier kept for 25 h, so both answer from raw samples); the
samples reach Prometheus through `promtool tsdb create-blocks-from openmetrics`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cramjam
import numpy as np
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from bench.ingest import API, Server, cpu_seconds
from bench.report import free_port, wait_for
from ingest.prompb.remote_pb2 import WriteRequest

BATCH = 500  # samples per request: Prometheus 2.42's max_samples_per_send
REQUESTS = 200
CLIENTS = 2
QUERY = "sum by (mode) (rate(node_cpu_seconds_total[5m]))"
MODES = ("idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice")


def remote_write_body(name: str, t: float, shard: int = 0) -> bytes:
    request = WriteRequest()
    for i in range(BATCH):
        series = request.timeseries.add()
        series.labels.add(name="__name__", value=name)
        series.labels.add(name="series", value=str(shard * BATCH + i))
        series.samples.add(value=float(i), timestamp=int(t * 1000))
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def otlp_body(name: str, t: float, shard: int = 0) -> bytes:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = name
    for i in range(BATCH):
        point = metric.gauge.data_points.add()
        point.time_unix_nano = int(t * 1e9)
        point.as_double = float(i)
        attribute = point.attributes.add()
        attribute.key, attribute.value.string_value = "series", str(shard * BATCH + i)
    return request.SerializeToString()


def json_body(name: str, t: float, shard: int = 0) -> bytes:
    samples = [
        {"name": name, "labels": {"series": str(shard * BATCH + i)}, "value": float(i), "timestamp": t}
        for i in range(BATCH)
    ]
    return json.dumps({"samples": samples}).encode()


PROTOCOLS = {  # name -> (path, headers, body maker)
    "remote write": (
        "/api/v1/write",
        {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
        remote_write_body,
    ),
    "OTLP/HTTP": ("/v1/metrics", {"Content-Type": "application/x-protobuf"}, otlp_body),
    "JSON push": (API + "/metrics/custom/record", {"Content-Type": "application/json"}, json_body),
}


def ingest(server: Server, protocol: str) -> dict:
    """Samples per second of one protocol: ``CLIENTS`` clients sending ``REQUESTS`` batches between them.

    Each client sends series of its own, in time order, as Prometheus' remote-write shards do.
    """
    path, headers, make = PROTOCOLS[protocol]
    name = "bench_" + protocol.split()[0].replace("/", "_").lower() + "_value"
    if protocol == "JSON push":
        body = {"name": name, "type": "gauge", "labels": ["series"]}
        server.session().post(server.url + API + "/metrics/custom/register", json=body).raise_for_status()
    start = time.time() - 1800
    bodies = [[make(name, start + k, c) for k in range(REQUESTS // CLIENTS)] for c in range(CLIENTS)]
    latencies: list[float] = []

    def run(mine: list[bytes]) -> None:
        http = server.session()
        for data in mine:
            t0 = time.perf_counter()
            answer = http.post(server.url + path, data=data, headers=headers)
            latencies.append(time.perf_counter() - t0)
            answer.raise_for_status()

    threads = [threading.Thread(target=run, args=(mine,)) for mine in bodies]
    cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(server.proc.pid) - cpu0
    latencies.sort()
    return {
        "samples_per_second": REQUESTS * BATCH / elapsed,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "cpu_ms_per_1k": cpu / (REQUESTS * BATCH) * 1e6,
    }


def day_of_cpu(now: float) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """24 h of node_cpu_seconds_total for 2 CPUs and 8 modes every 15 s, with jitter as a scrape has."""
    rng = np.random.default_rng(7)
    times = np.arange(now - 86400, now, 15.0) + rng.uniform(-0.2, 0.2, int(86400 / 15))
    times = np.round(times, 3)
    series = {}
    for cpu in ("0", "1"):
        for k, mode in enumerate(MODES):
            share = 0.8 if mode == "idle" else 0.2 / (k + 1)
            series[(cpu, mode)] = np.round(np.cumsum(rng.uniform(0.5, 1.5, len(times)) * 15 * share), 2)
    return times, series


def prometheus_with(times, series, tmp: Path) -> tuple[subprocess.Popen, str]:
    lines = [
        "# HELP node_cpu_seconds Seconds the CPUs spent in each mode.",
        "# TYPE node_cpu_seconds counter",
    ]
    for (cpu, mode), values in series.items():
        lines += [
            f'node_cpu_seconds_total{{cpu="{cpu}",mode="{mode}"}} {v} {t}' for t, v in zip(times, values)
        ]
    return prometheus_from_openmetrics(lines, tmp, "3d")


def prometheus_from_openmetrics(lines: list[str], tmp: Path, retention: str) -> tuple[subprocess.Popen, str]:
    """Prometheus 2.42 holding exactly these OpenMetrics lines (as blocks made by promtool); its URL."""
    (tmp / "samples.om").write_text("\n".join(lines) + "\n# EOF\n")
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(tmp / "samples.om"), str(tmp / "tsdb")],
        check=True,
        capture_output=True,
    )
    return prometheus(tmp, f"--storage.tsdb.retention.time={retention}")


def prometheus(tmp: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """Prometheus 2.42 on a free port with its data in ``tmp`` and these flags, ready; its URL."""
    port = free_port()
    (tmp / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/-/ready", "Prometheus")
    return proc, url


def pulseboard_with(times, series) -> Server:
    server = Server(PULSEBOARD_STORE__RAW__RETENTION="25h")
    http = server.session()
    request = WriteRequest()
    for (cpu, mode), values in series.items():
        ts = request.timeseries.add()
        for key, value in (("__name__", "node_cpu_seconds_total"), ("cpu", cpu), ("mode", mode)):
            ts.labels.add(name=key, value=value)
        for t, v in zip(times, values):
            ts.samples.add(value=float(v), timestamp=int(round(t * 1000)))
    # In batches, as remote write sends them.
    for k in range(0, len(request.timeseries)):
        one = WriteRequest()
        one.timeseries.add().CopyFrom(request.timeseries[k])
        whole = one.timeseries[0]
        for j in range(0, len(whole.samples), 5000):
            part = WriteRequest()
            piece = part.timeseries.add()
            piece.labels.extend(whole.labels)
            piece.samples.extend(whole.samples[j : j + 5000])
            body = bytes(cramjam.snappy.compress_raw(part.SerializeToString()))
            http.post(
                server.url + "/api/v1/write", data=body, headers=PROTOCOLS["remote write"][1]
            ).raise_for_status()
    return server


def time_range(
    url: str, http: requests.Session, params: dict, runs: int
) -> tuple[list[float], requests.Response]:
    """Ask one query_range once, then ``runs`` times timed: (milliseconds sorted, the first answer)."""
    answer = http.get(url + "/api/v1/query_range", params=params, timeout=120)
    took = []
    for _ in range(runs if answer.ok else 0):
        t0 = time.perf_counter()
        http.get(url + "/api/v1/query_range", params=params, timeout=120).raise_for_status()
        took.append((time.perf_counter() - t0) * 1000)
    return sorted(took), answer


def time_query(url: str, http: requests.Session, now: float, runs: int = 30) -> tuple[dict, dict]:
    params = {"query": QUERY, "start": now - 86400, "end": now, "step": 60}
    took, answer = time_range(url, http, params, runs)
    answer.raise_for_status()
    return {"median_ms": statistics.median(took), "p95_ms": took[int(runs * 0.95) - 1]}, answer.json()


def difference(ours: list, theirs: list) -> float:
    """The largest relative difference between two answers' results (inf when their series or times differ)."""
    mine = {tuple(sorted(s["metric"].items())): dict(s["values"]) for s in ours}
    worst = 0.0
    for s in theirs:
        points = mine.get(tuple(sorted(s["metric"].items())))
        if points is None:
            return float("inf")
        for t, v in s["values"]:
            if t not in points:
                return float("inf")
            a, b = float(points[t]), float(v)
            worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    return worst


def one_run() -> dict:
    out = {}
    server = Server()
    try:
        for protocol in PROTOCOLS:
            out[protocol] = ingest(server, protocol)
    finally:
        server.stop()
    now = float(int(time.time() // 60 * 60))
    times, series = day_of_cpu(now)
    tmp = Path(tempfile.mkdtemp())
    prom, url = prometheus_with(times, series, tmp)
    pb = pulseboard_with(times, series)
    try:
        out["query Prometheus"], theirs = time_query(url, requests.Session(), now)
        out["query Pulseboard"], ours = time_query(pb.url, pb.session(), now)
        out["largest relative difference"] = difference(ours["data"]["result"], theirs["data"]["result"])
    finally:
        pb.stop()
        prom.terminate()
        prom.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    runs = [one_run() for _ in range(parser.parse_args().runs)]
    print(json.dumps(runs, indent=1))

    def span(values: list[float], fmt: str = "{:,.0f}") -> str:
        return f"{fmt.format(min(values))}–{fmt.format(max(values))}"

    print("\n| measure | Pulseboard | peer / baseline in the same run |\n|---|---|---|")
    json_rate = [r["JSON push"]["samples_per_second"] for r in runs]
    for protocol in ("remote write", "OTLP/HTTP", "JSON push"):
        rate = [r[protocol]["samples_per_second"] for r in runs]
        p99 = [r[protocol]["p99_ms"] for r in runs]
        ratio = [a / b for a, b in zip(rate, json_rate)]
        print(
            f"| {protocol} ingest, {BATCH} samples a request, {CLIENTS} clients | {span(rate)} samples/s, p99 {span(p99, '{:.0f}')} ms | {span(ratio, '{:.2f}')}× the JSON push |"
        )
    ours = [r["query Pulseboard"]["median_ms"] for r in runs]
    theirs = [r["query Prometheus"]["median_ms"] for r in runs]
    ratio = [a / b for a, b in zip(ours, theirs)]
    worst = max(r["largest relative difference"] for r in runs)
    print(
        f"| query_range `{QUERY}`, 24 h at 60 s, median of 30 | {span(ours, '{:.1f}')} ms | Prometheus {span(theirs, '{:.1f}')} ms ({span(ratio, '{:.2f}')}×); answers differ by at most {worst:.1e} |"
    )


if __name__ == "__main__":
    main()
