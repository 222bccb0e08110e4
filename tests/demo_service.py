"""The series the PromQL compliance suite's queries expect (those of PromLabs' demo service, three
instances scraped every 5 s), made up reproducibly and sent by Prometheus remote write, time slice by
time slice, to any receiver: the same samples reach Pulseboard and a real Prometheus."""

from __future__ import annotations

import math
import random
import struct

import cramjam
import requests

from ingest.prompb.remote_pb2 import WriteRequest

INSTANCES = [f"demo.promlabs.com:1000{i}" for i in range(3)]
SCRAPE_MS = 5_000
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
BUCKETS = ("0.0001", "0.00015", "0.0002", "0.0003", "0.0004", "0.0005", "0.001", "0.0025", "0.005", "0.01")
ROUTES = [("GET", "/api/foo", "200"), ("POST", "/api/foo", "200"), ("GET", "/api/bar", "500")]


def samples(start_ms: int, end_ms: int, seed: int = 7) -> dict[tuple, list[tuple[int, float]]]:
    """Return labels (sorted pairs, ``__name__`` among them) -> [(ms, value)] from start to end."""
    rng = random.Random(seed)
    out: dict[tuple, list[tuple[int, float]]] = {}

    def put(name: str, t: int, value: float, **labels: str) -> None:
        key = tuple(sorted({"__name__": name, **labels}.items()))
        out.setdefault(key, []).append((t, value))

    for n, instance in enumerate(INSTANCES):
        base = {"instance": instance, "job": "demo"}
        cpus = (4, 8, 16)[n]
        cpu = {mode: rng.uniform(1e3, 1e4) for mode in ("idle", "user", "system")}
        disk = rng.uniform(1e9, 5e9)
        batch = start_ms / 1000 - rng.uniform(0, 300)
        requests_ = {route: [0.0] * (len(BUCKETS) + 1) for route in ROUTES}
        latency_sum = dict.fromkeys(ROUTES, 0.0)
        jitter = 113 * n + 7  # instances are scraped a little apart, as real ones are
        intermittent_up = True
        for t in range(start_ms + jitter, end_ms, SCRAPE_MS):
            step = (t - start_ms) // SCRAPE_MS
            put("demo_num_cpus", t, float(cpus), **base)
            for kind, scale in (("free", 2e9), ("used", 6e9), ("buffers", 3e8), ("cached", 1e9)):
                wave = math.sin(step / 40 + n) * 0.1 * scale
                put(
                    "demo_memory_usage_bytes",
                    t,
                    round(scale + wave + rng.uniform(-1e6, 1e6)),
                    type=kind,
                    **base,
                )
            for mode in cpu:
                cpu[mode] += rng.uniform(0, 5) * cpus / 4
                if step and step % 500 == 250 + 50 * n and mode == "user":  # a restart: the counter resets
                    cpu[mode] = rng.uniform(0, 3)
                put("demo_cpu_usage_seconds_total", t, cpu[mode], mode=mode, **base)
            disk += rng.uniform(-1e5, 4e5)
            put("demo_disk_usage_bytes", t, disk, **base)
            put("demo_disk_total_bytes", t, 1e11, **base)
            if rng.random() < 0.02:
                batch = t / 1000 - rng.uniform(0, 5)
            put("demo_batch_last_success_timestamp_seconds", t, float(math.floor(batch)), **base)
            if step % 60 == 0:
                intermittent_up = not intermittent_up if step else True
                if not intermittent_up:
                    put("demo_intermittent_metric", t, STALE, **base)  # it disappears: a staleness marker
            if intermittent_up:
                put("demo_intermittent_metric", t, float(step % 7), **base)
            for route in ROUTES:
                method, path, status = route
                counts = requests_[route]
                for _ in range(rng.randint(0, 6)):
                    seconds = rng.expovariate(1 / 0.0008)
                    latency_sum[route] += seconds
                    for i, bound in enumerate(BUCKETS):
                        if seconds <= float(bound):
                            counts[i] += 1
                    counts[-1] += 1
                labels = {"method": method, "path": path, "status": status, **base}
                for bound, count in zip((*BUCKETS, "+Inf"), counts):
                    put("demo_api_request_duration_seconds_bucket", t, count, le=bound, **labels)
                put("demo_api_request_duration_seconds_count", t, counts[-1], **labels)
                put("demo_api_request_duration_seconds_sum", t, latency_sum[route], **labels)
    return out


def write(
    url: str, series: dict[tuple, list[tuple[int, float]]], headers: dict | None = None, slice_ms=120_000
):
    """Send every sample by remote write in time order, one request per slice of time."""
    start = min(points[0][0] for points in series.values())
    end = max(points[-1][0] for points in series.values())
    for lower in range(start, end + 1, slice_ms):
        request = WriteRequest()
        for labels, points in series.items():
            here = [(t, v) for t, v in points if lower <= t < lower + slice_ms]
            if not here:
                continue
            ts = request.timeseries.add()
            for name, value in labels:
                ts.labels.add(name=name, value=value)
            for t, v in here:
                ts.samples.add(value=v, timestamp=t)
        body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
        answer = requests.post(
            url,
            data=body,
            headers={
                "Content-Encoding": "snappy",
                "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0",
                **(headers or {}),
            },
            timeout=30,
        )
        assert answer.status_code in (200, 204), f"{url}: {answer.status_code} {answer.text}"
