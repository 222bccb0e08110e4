"""Ten typical dashboard queries, Pulseboard against Prometheus 2.42 on the same 29 days of samples.

Two hosts' CPU counters (2 CPUs × 8 modes), a request-duration histogram (3 handlers × 9 buckets with
_count and _sum) and available memory, every 5 minutes for 29 days: 1,008,576 samples in 116 series.
Prometheus gets them through ``promtool tsdb create-blocks-from openmetrics``, each Pulseboard (the
README's production command: raw hour, minutes for 7 days, hours for 30; ``--raw 30d`` keeps every
sample raw, as Prometheus does) by remote write. Each
``query_range`` is asked 10 times of each server; the table gives the median.

    python -m bench.queries [--runs 3] [--old PATH_TO_A_CHECKOUT_OF_THE_EARLIER_CODE] [--raw 30d]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cramjam
import numpy as np
import requests

from bench.ingest import Server
from bench.protocols import PROTOCOLS, difference, prometheus_from_openmetrics, time_range
from ingest.prompb.remote_pb2 import WriteRequest

DAY = 86400.0
STEP = 300.0
MODES = ("idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")
HANDLERS = ("/api/orders", "/api/search", "/metrics")
# (query, range in days, step in seconds)
QUERIES = [
    ("sum by (mode) (rate(node_cpu_seconds_total[15m]))", 1, 300),
    ('sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[15m]))', 7, 3600),
    ('1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[15m]))', 1, 300),
    ("histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[15m])))", 1, 300),
    (
        "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[1h])))",
        7,
        3600,
    ),
    ("topk(3, sum by (handler) (rate(http_request_duration_seconds_count[15m])))", 1, 300),
    ("increase(http_request_duration_seconds_count[1h])", 7, 3600),
    ("avg_over_time(node_memory_MemAvailable_bytes[7d])", 21, 86400),
    ("max_over_time(node_memory_MemAvailable_bytes[1d])", 28, 86400),
    ("avg_over_time(node_memory_MemAvailable_bytes[1h])", 28, 3600),
]


def samples(now: float) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """labels (sorted pairs, __name__ first) -> (times, values), 29 days every 5 minutes."""
    rng = np.random.default_rng(11)
    times = np.round(np.arange(now - 29 * DAY, now, STEP) + rng.uniform(-0.5, 0.5, int(29 * DAY / STEP)), 3)
    out = {}
    for host in ("a", "b"):
        for cpu in ("0", "1"):
            for k, mode in enumerate(MODES):
                share = 0.7 if mode == "idle" else 0.3 / (k + 1)
                increments = rng.uniform(0.5, 1.5, len(times)) * STEP * share
                out[
                    (("__name__", "node_cpu_seconds_total"), ("cpu", cpu), ("instance", host), ("mode", mode))
                ] = (
                    times,
                    np.round(np.cumsum(increments), 2),
                )
        for handler in HANDLERS:
            counts = rng.poisson(40, (len(times), len(BUCKETS) - 1))
            cumulative = np.cumsum(np.cumsum(counts, axis=1), axis=0).astype(float)
            base = (("handler", handler), ("instance", host))
            for i, le in enumerate(BUCKETS):
                column = cumulative[:, min(i, len(BUCKETS) - 2)]
                out[(("__name__", "http_request_duration_seconds_bucket"), *base, ("le", le))] = (
                    times,
                    column,
                )
            out[(("__name__", "http_request_duration_seconds_count"), *base)] = (times, cumulative[:, -1])
            out[(("__name__", "http_request_duration_seconds_sum"), *base)] = (
                times,
                np.round(np.cumsum(rng.uniform(1, 3, len(times))), 3),
            )
        memory = 8e9 + 1e9 * np.sin(times / DAY * 2 * np.pi) + rng.normal(0, 5e7, len(times))
        out[(("__name__", "node_memory_MemAvailable_bytes"), ("instance", host))] = (times, np.round(memory))
    return out


def prometheus_with(series: dict, tmp: Path) -> tuple[subprocess.Popen, str]:
    lines = []
    by_family: dict[str, list[str]] = {}
    for labels, (times, values) in series.items():
        name = labels[0][1]
        family = "node_cpu_seconds" if name == "node_cpu_seconds_total" else name
        for suffix in ("_bucket", "_count", "_sum"):
            if name.startswith("http_request_duration_seconds") and name.endswith(suffix):
                family = "http_request_duration_seconds"
        inner = ",".join(f'{k}="{v}"' for k, v in labels[1:])
        by_family.setdefault(family, []).extend(f"{name}{{{inner}}} {v} {t}" for t, v in zip(times, values))
    types = {
        "node_cpu_seconds": "counter",
        "http_request_duration_seconds": "histogram",
        "node_memory_MemAvailable_bytes": "gauge",
    }
    for family, rows in by_family.items():
        lines.append(f"# TYPE {family} {types[family]}")
        lines += rows
    return prometheus_from_openmetrics(lines, tmp, "40d")


def pulseboard_with(series: dict, root: str | None, raw: str | None) -> Server:
    server = Server(root, **({"PULSEBOARD_STORE__RAW__RETENTION": raw} if raw else {}))
    http = server.session()
    for labels, (times, values) in series.items():
        for j in range(0, len(times), 5000):
            request = WriteRequest()
            ts = request.timeseries.add()
            for key, value in labels:
                ts.labels.add(name=key, value=value)
            for t, v in zip(times[j : j + 5000], values[j : j + 5000]):
                ts.samples.add(value=float(v), timestamp=int(round(t * 1000)))
            body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
            http.post(
                server.url + "/api/v1/write", data=body, headers=PROTOCOLS["remote write"][1]
            ).raise_for_status()
    return server


def timed(url: str, http: requests.Session, query: str, now: float, days: float, step: float) -> dict:
    params = {"query": query, "start": now - days * DAY, "end": now, "step": step}
    took, first = time_range(url, http, params, 10)
    if first.status_code != 200:
        return {"error": f"{first.status_code} {first.text[:200]}"}
    return {"median_ms": statistics.median(took), "answer": first.json()["data"]["result"]}


def one_run(old: str | None, raw: str | None) -> dict:
    now = float(int(time.time() // STEP * STEP))
    series = samples(now)
    tmp = Path(tempfile.mkdtemp())
    prom, url = prometheus_with(series, tmp)
    servers = {"new": pulseboard_with(series, None, raw)}
    if old:
        servers["old"] = pulseboard_with(series, old, raw)
    out: dict = {}
    try:
        for query, days, step in QUERIES:
            theirs = timed(url, requests.Session(), query, now, days, step)
            row = {"prometheus_ms": theirs["median_ms"]}
            for name, server in servers.items():
                ours = timed(server.url, server.session(), query, now, days, step)
                if "error" in ours:
                    row[name] = ours["error"]
                    continue
                row[f"{name}_ms"] = ours["median_ms"]
                row[f"{name}_difference"] = difference(ours["answer"], theirs["answer"])
            out[query] = row
    finally:
        for server in servers.values():
            server.stop()
        prom.terminate()
        prom.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old", help="a checkout of the earlier code, run beside this one")
    parser.add_argument("--raw", help="the raw tier's retention (e.g. 30d: every sample raw, as Prometheus)")
    args = parser.parse_args()
    runs = [one_run(args.old, args.raw) for _ in range(args.runs)]
    print(json.dumps(runs, indent=1))

    def span(values: list[float], fmt: str) -> str:
        return f"{fmt.format(min(values))}–{fmt.format(max(values))}"

    print(
        "\n| query | range, step | Pulseboard | earlier code | Prometheus 2.42 | ratio | largest difference |"
    )
    print("|---|---|---|---|---|---|---|")
    for query, days, step in QUERIES:
        rows = [r[query] for r in runs]
        new = [r["new_ms"] for r in rows if "new_ms" in r]
        theirs = [r["prometheus_ms"] for r in rows]
        old = [r["old_ms"] for r in rows if "old_ms" in r]
        ratio = [r["new_ms"] / r["prometheus_ms"] for r in rows if "new_ms" in r]
        worst = max((r.get("new_difference", float("inf")) for r in rows), default=float("inf"))
        earlier = span(old, "{:.1f}") + " ms" if old else rows[0].get("old", "")
        print(
            f"| `{query}` | {days:g} d, {step:g} s | {span(new, '{:.1f}')} ms | {earlier} | "
            f"{span(theirs, '{:.1f}')} ms | {span(ratio, '{:.2f}')}× | {worst:.1e} |"
        )


if __name__ == "__main__":
    main()
