"""The embedded store measured, side by side with Prometheus 2.42 on the same data: `python -m bench.store`.

Every figure is taken over ``--runs`` runs (3 by default) and given as a range; each run of a
memory or start-up figure is a process of its own. Prometheus and node_exporter are Debian's
packages, started on free 127.0.0.1 ports and stopped by PID. The results go to BENCHMARKS.md
between the `store: begin` and `store: end` markers.

    memory       RSS of a production Pulseboard scraping a real node_exporter every 15 s for
                 5 minutes, of the same process with an empty store, and of Prometheus scraping
                 the same node_exporter in the same minutes; the store filled at production
                 retention (1,000 series) and with an hour of seconds (10,000 series)
    disk         bytes per raw sample of node_exporter readings (scraped every second for the
                 same 5 minutes), and Prometheus' block for the very same samples (promtool)
    speed        appends in process, a 7-day query cold and warm, start-up on 1,000 series x 7 days
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import requests

from bench.history import Clock
from bench.peers import tree_rss
from bench.report import free_port, wait_for
from collectors.scrape import ScrapeCollector
from dashboard_app.settings import load_settings
from tsdb.aggregator import Aggregator
from tsdb.archive import FILE, Archive
from tsdb.metrics import Sample
from tsdb.store import COMPACT_AFTER, Store, Tier, build_store

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_764_000_000.0
WEEK = 7 * 86400
SECRETS = {"PULSEBOARD_SECRET_KEY": "b" * 40, "PULSEBOARD_ADMIN_PASSWORD": "bench-admin-password"}


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    return {**env, **extra}


def spread(values: list[float], digits: int = 1) -> str:
    """Return 'lo–hi' of the runs (or one value when they agree at that precision)."""
    lo, hi = f"{min(values):,.{digits}f}", f"{max(values):,.{digits}f}"
    return lo if lo == hi else f"{lo}–{hi}"


# ----- memory and disk beside Prometheus, scraping one real node_exporter


class Started:
    """A process started for the benchmark, stopped by its PID."""

    def __init__(self, argv: list[str], env: dict | None = None):
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def node_exporter() -> tuple[Started, str]:
    port = free_port()
    exporter = Started(["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for(url, "node_exporter")
    return exporter, url


def prometheus(data: Path, target: str) -> tuple[Started, str]:
    port = free_port()
    config = data / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 15s}\n"
        f"scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['{target}']\n"
    )
    server = Started(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/-/ready", "prometheus")
    return server, url


def pulseboard(data: Path, scrape: str | None) -> tuple[Started, str]:
    """A production Pulseboard; with ``scrape`` it reads that node_exporter every 15 s, without it
    (and without its collectors) its store stays empty."""
    port = free_port()
    extra = dict(SECRETS, PULSEBOARD_ENV="production")
    if scrape:
        extra["PULSEBOARD_SCRAPE"] = json.dumps([{"url": scrape, "job": "node", "interval": "15s"}])
    else:
        for name in ("SYSTEM", "DISK_USAGE", "SELF"):
            extra[f"PULSEBOARD_COLLECTORS__{name}__ENABLED"] = "false"
    argv = [sys.executable, "app.py", "--env", "production", "--port", str(port), "--data-dir", str(data)]
    app = Started(argv, clean_env(**extra))
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/login", "pulseboard")
    return app, url


def scrape_every_second(url: str, data: Path, stop: threading.Event) -> dict:
    """Scrape node_exporter once a second until ``stop``, into a production store on disk and into one
    that keeps the raw tier alone (its file is what raw samples cost, index and pages included)."""
    settings = load_settings("production", environ={})
    store = build_store(settings, time.time, Archive(data / "production", settings.store.cache_size))
    raw_only = Store(
        Tier(0, settings.store.raw.retention), 1, [], clock=time.time, archive=Archive(data / "raw")
    )
    scraper = ScrapeCollector(url, "node", clock=time.time)
    while not stop.is_set():
        tick = time.monotonic()
        samples = scraper.collect()
        for s in (store, raw_only):
            s.append(samples)
            s.flush()
        stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
    # Every head sealed and merged: the figure is chunks on disk, as they stand once the head moves on.
    for s in (store, raw_only):
        s.seal_heads()
        s.flush()
        for _ in range(3):  # merges run a few series per flush
            s._fragments[:] = COMPACT_AFTER
            s.flush()
    raw_bytes, raw_samples = raw_only.archive.chunk_bytes(0.0)
    series = [s for name in store.names() for s in store.series(name)]
    openmetrics = data / "samples.om"
    with openmetrics.open("w") as out:  # the same samples for promtool to build a Prometheus block
        for name in sorted({s.name for s in series}):
            out.write(f"# TYPE {name} gauge\n")
            for s in store.series(name):
                ts, val = store.read_raw(s.id, 0, time.time() + 10)
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels)
                for t, v in zip(ts.tolist(), val.tolist()):
                    out.write(f"{name}{{{labels}}} {v!r} {t:.3f}\n")
        out.write("# EOF\n")
    sizes = {}
    for name, s in (("production", store), ("raw", raw_only)):
        s.close()
        db = sqlite3.connect(data / name / FILE)
        db.execute("VACUUM")  # pages freed by the log and merges are not history
        db.close()
        sizes[name] = sum(p.stat().st_size for p in (data / name).glob(FILE + "*"))
    return {
        "series": len(series),
        "samples": raw_samples,
        "chunk_bytes": raw_bytes,
        "raw_file_bytes": sizes["raw"],
        "file_bytes": sizes["production"],
        "openmetrics": openmetrics,
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_block_bytes(openmetrics: Path, out: Path) -> int:
    """Build Prometheus blocks from OpenMetrics text with promtool; return their chunks and index bytes."""
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(out)],
        check=True,
        capture_output=True,
    )
    return sum(
        p.stat().st_size for p in out.rglob("*") if p.is_file() and ("chunks" in p.parts or p.name == "index")
    )


def beside_prometheus(minutes: float) -> dict:
    """One run: Pulseboard (scraping, and empty), Prometheus, all for ``minutes``; RSS at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for part in ("full", "empty", "prom", "disk", "disk/production", "disk/raw", "blocks"):
            (tmp / part).mkdir()
        exporter, url = node_exporter()
        target = url.split("/")[2]
        started = [exporter]
        try:
            full, _ = pulseboard(tmp / "full", url)
            started.append(full)
            empty, _ = pulseboard(tmp / "empty", None)
            started.append(empty)
            prom, prom_url = prometheus(tmp / "prom", target)
            started.append(prom)
            stop = threading.Event()
            result: dict = {}
            worker = threading.Thread(
                target=lambda: result.update(scrape_every_second(url, tmp / "disk", stop)), daemon=True
            )
            worker.start()
            time.sleep(minutes * 60)
            out = {
                "pulseboard_rss_mib": tree_rss(psutil.Process(full.proc.pid)) / 2**20,
                "empty_rss_mib": tree_rss(psutil.Process(empty.proc.pid)) / 2**20,
                "prometheus_rss_mib": tree_rss(psutil.Process(prom.proc.pid)) / 2**20,
            }
            stop.set()
            worker.join(120)
            heads = requests.get(
                prom_url + "/api/v1/query", params={"query": 'scrape_samples_scraped{job="node"}'}, timeout=5
            )
            out["prometheus_series"] = int(float(heads.json()["data"]["result"][0]["value"][1]))
        finally:
            for proc in reversed(started):
                proc.stop()
        out["node_series"] = result["series"]
        out["node_samples"] = result["samples"]
        out["pulseboard_bytes_per_sample"] = result["raw_file_bytes"] / result["samples"]
        out["pulseboard_chunk_bytes_per_sample"] = result["chunk_bytes"] / result["samples"]
        out["pulseboard_file_bytes_per_sample"] = result["file_bytes"] / result["samples"]
        out["prometheus_bytes_per_sample"] = (
            prometheus_block_bytes(result["openmetrics"], tmp / "blocks") / result["samples"]
        )
        return out


def disk_only(minutes: float) -> dict:
    """The disk figure alone: node_exporter scraped every second into stores on disk, then promtool."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for part in ("disk/production", "disk/raw", "blocks"):
            (tmp / part).mkdir(parents=True)
        exporter, url = node_exporter()
        try:
            stop = threading.Event()
            timer = threading.Timer(minutes * 60, stop.set)
            timer.start()
            result = scrape_every_second(url, tmp / "disk", stop)
        finally:
            exporter.stop()
        blocks = prometheus_block_bytes(result["openmetrics"], tmp / "blocks")
        return {
            "node_series": result["series"],
            "node_samples": result["samples"],
            "pulseboard_bytes_per_sample": result["raw_file_bytes"] / result["samples"],
            "pulseboard_chunk_bytes_per_sample": result["chunk_bytes"] / result["samples"],
            "pulseboard_file_bytes_per_sample": result["file_bytes"] / result["samples"],
            "prometheus_bytes_per_sample": blocks / result["samples"],
        }


# ----- memory of a filled store (each run a process of its own: bench.fill)


def filled(kind: str, series: int, cache: int | None = None) -> dict:
    env = clean_env(**({"PULSEBOARD_STORE__CACHE_SIZE": str(cache)} if cache else {}))
    out = subprocess.run(
        [sys.executable, "-m", "bench.fill", kind, str(series)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----- speed


def append_rate(batches: int = 500, batch: int = 1000, series: int = 100) -> tuple[float, float]:
    """Samples per second through Store.append on a store on disk: the appends alone, and with the
    flushes (compression, rollups, merges, the write to disk) that a running Pulseboard does in
    its background flush job."""
    clock = Clock(NOW)
    settings = load_settings("production", environ={})
    with tempfile.TemporaryDirectory() as data:
        store = build_store(settings, clock, Archive(data))
        labels = [(("series", str(i)),) for i in range(series)]
        per = batch // series
        prepared = [
            [
                Sample("bench_metric", labels[j % series], float(j), NOW + k * per + j // series)
                for j in range(batch)
            ]
            for k in range(batches)
        ]
        appending = flushing = 0.0
        for k, samples in enumerate(prepared):
            t0 = time.perf_counter()
            store.append(samples)
            appending += time.perf_counter() - t0
            if k % 50 == 49:  # a flush every 50,000 samples, as every 5 s at 10,000 samples/s
                clock.now = NOW + (k + 1) * per
                t0 = time.perf_counter()
                store.flush()
                flushing += time.perf_counter() - t0
        store.close()
    total = batches * batch
    return total / appending, total / (appending + flushing)


def week_of_15s(data: Path) -> None:
    """Leave 7 days of 15 s readings of one series in a data directory, flushed as they came."""
    settings = load_settings("production", environ={})
    clock = Clock(NOW - WEEK)
    store = build_store(settings, clock, Archive(data))
    ts = np.arange(NOW - WEEK, NOW, 15.0)
    values = np.sin(ts / 3600.0) + 1
    for i in range(0, len(ts), 20):  # five minutes at a time
        clock.now = float(ts[min(i + 19, len(ts) - 1)])
        store.append(
            [
                Sample("bench_metric", (), float(v), float(t))
                for t, v in zip(ts[i : i + 20], values[i : i + 20])
            ]
        )
        store.flush()
    clock.now = NOW
    store.close()


def query_child(data: str) -> dict:
    """In a fresh process: the first 7-day query (cache empty) and the median of the next 30."""
    settings = load_settings("production", environ={})
    store = build_store(settings, Clock(NOW), Archive(data))
    agg = Aggregator(store, settings.query.max_points)
    step = WEEK / 1000
    t0 = time.perf_counter()
    frame = agg.query("bench_metric", NOW - WEEK, NOW, step, "avg")
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(30):
        t0 = time.perf_counter()
        agg.query("bench_metric", NOW - WEEK, NOW, step, "avg")
        warm.append(time.perf_counter() - t0)
    store.archive.close()
    return {"points": len(frame), "cold_ms": cold * 1000, "warm_ms": statistics.median(warm) * 1000}


def week_of_minutes(data: Path, series: int = 1000) -> None:
    """Leave 1,000 series x 7 days of 1-minute readings in a data directory, as a running Pulseboard would."""
    settings = load_settings("production", environ={})
    now = time.time()
    clock = Clock(now - WEEK)
    archive = Archive(data / "tsdb")
    store = build_store(settings, clock, archive)
    labels = [(("series", str(i)),) for i in range(series)]
    for t in np.arange(now - WEEK, now, 60.0):
        clock.now = float(t)
        store.append([Sample("bench_metric", lab, float(t % 97), float(t)) for lab in labels])
        if int(t) % 3600 < 60:
            store.flush()
    clock.now = now
    store.close()


def startup(data: Path) -> float:
    """Seconds from starting `python app.py --env production` on a data directory to its first 200."""
    port = free_port()
    argv = [sys.executable, "app.py", "--env", "production", "--port", str(port), "--data-dir", str(data)]
    t0 = time.monotonic()
    app = Started(argv, clean_env(**SECRETS, PULSEBOARD_ENV="production"))
    try:
        while time.monotonic() - t0 < 120:
            try:
                if requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("Pulseboard did not answer within 120 s")
    finally:
        app.stop()


# ----- the table


def section(r: dict) -> str:
    b = r["beside"]
    share = [p - e for p, e in zip(b["pulseboard_rss_mib"], b["empty_rss_mib"])]
    ratio = [s / p for s, p in zip(share, b["prometheus_rss_mib"])]
    disk_ratio = [a / b_ for a, b_ in zip(b["pulseboard_bytes_per_sample"], b["prometheus_bytes_per_sample"])]
    prod, secs = r["production"], r["seconds"]
    lines = [
        f"Written by `make bench` (`python -m bench.store --runs {r['runs']}`) on {r['when']}, {os.cpu_count()} cores, "
        f"Prometheus 2.42 and node_exporter 1.5 from Debian in the same runs. Ranges are over {r['runs']} runs.",
        "",
        "| measure | Pulseboard | Prometheus, same run | ratio | goal | |",
        "|---|---|---|---|---|---|",
        f"| RSS, production, scraping a real node_exporter ({spread(b['node_series'], 0)} series) every 15 s plus its own "
        f"metrics, after {r['minutes']:g} min | {spread(b['pulseboard_rss_mib'])} MiB (empty store: "
        f"{spread(b['empty_rss_mib'])} MiB; store's share {spread(share)} MiB) | {spread(b['prometheus_rss_mib'])} MiB "
        f"| share {spread(ratio, 2)}× | ≤ 250 MiB, share ≤ 2× | "
        f"{_met(max(b['pulseboard_rss_mib']) <= 250 and max(ratio) <= 2)} |",
        f"| store memory, 1,000 series at production retention filled (30 d of hours, 7 d of minutes, 1 h of seconds), "
        f"without the read cache | {spread(prod['cacheless'])} MiB of RSS growth (head and bookkeeping "
        f"{spread(prod['held'])} MiB); with the 32 MiB cache full: {spread(prod['with_cache'])} MiB | | | ≤ 16 MiB "
        f"| {_met(max(prod['cacheless']) <= 16)} |",
        f"| store memory, 10,000 series, 1 h of seconds each | {spread(secs['cacheless'])} MiB of RSS growth without "
        f"the cache (head {spread(secs['held'])} MiB) | | | ≤ 64 MiB | {_met(max(secs['cacheless']) <= 64)} |",
        f"| disk per raw sample, node_exporter readings every second for {r['minutes']:g} min | "
        f"{spread(b['pulseboard_bytes_per_sample'], 2)} B (the file of a store keeping raw samples alone: chunks "
        f"{spread(b['pulseboard_chunk_bytes_per_sample'], 2)} B, the rest rows, index and pages); a production store's "
        f"file, with every rollup tier: {spread(b['pulseboard_file_bytes_per_sample'], 2)} B "
        f"| {spread(b['prometheus_bytes_per_sample'], 2)} B (promtool's block of the same samples, chunks and index) "
        f"| {spread(disk_ratio, 2)}× | ≤ 2 B | {_met(max(b['pulseboard_bytes_per_sample']) <= 2)} |",
        f"| append in process, batches of 1,000 over 100 series | {spread([a / 1e6 for a in r['append']], 2)} M "
        f"samples/s; with the flushes' compression, rollups, merges and writes counted in: "
        f"{spread([a / 1e6 for a in r['append_flushed']], 2)} M/s | | | ≥ 1 M/s | {_met(min(r['append']) >= 1e6)} |",
        f"| query 7 days of 15 s data → 1,000 points, data on disk | warm {spread(r['warm'], 2)} ms, cold (fresh "
        f"process, empty cache) {spread(r['cold'], 1)} ms | | | ≤ 5 ms warm, ≤ 50 ms cold "
        f"| {_met(max(r['warm']) <= 5 and max(r['cold']) <= 50)} |",
        f"| start-up with 1,000 series × 7 days stored ({r['stored_mib']:.0f} MiB) | first HTTP 200 after "
        f"{spread(r['startup'], 2)} s | | | ≤ 5 s | {_met(max(r['startup']) <= 5)} |",
    ]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def write(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    begin, end = "<!-- store: begin -->", "<!-- store: end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc += f"\n## The store beside Prometheus\n\n{block}\n"
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--query-child", help=argparse.SUPPRESS)
    parser.add_argument("--disk", action="store_true", help="only the disk figure (node_exporter, promtool)")
    args = parser.parse_args()
    if args.query_child:
        print(json.dumps(query_child(args.query_child)))
        return
    if args.disk:
        print(json.dumps(disk_only(args.minutes)))
        return
    for tool in ("prometheus", "promtool", "prometheus-node-exporter"):
        if not shutil.which(tool):
            raise SystemExit(
                f"{tool} is missing: `make bench` installs it (Debian packages prometheus, prometheus-node-exporter)"
            )
    r: dict = {
        "runs": args.runs,
        "minutes": args.minutes,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    beside = [beside_prometheus(args.minutes) for _ in range(args.runs)]
    r["beside"] = {k: [b[k] for b in beside] for k in beside[0]}
    print("beside Prometheus:", json.dumps(r["beside"]), flush=True)
    for kind, series in (("production", 1000), ("seconds", 10_000)):
        cacheless = [filled(kind, series, cache=2**20) for _ in range(args.runs)]
        full = [filled(kind, series)] if kind == "production" else []
        r[kind] = {
            "cacheless": [c["rss_growth_without_cache_mib"] for c in cacheless],
            "held": [c["store_mib"] for c in cacheless],
            "with_cache": [f["rss_mib"] - f["baseline_rss_mib"] for f in full] or [0.0],
        }
        print(kind, json.dumps(r[kind]), flush=True)
    rates = [append_rate() for _ in range(args.runs)]
    r["append"] = [a for a, _ in rates]
    r["append_flushed"] = [f for _, f in rates]
    with tempfile.TemporaryDirectory() as data:
        week_of_15s(Path(data))
        queries = []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, "-m", "bench.store", "--query-child", data],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            queries.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r["cold"] = [q["cold_ms"] for q in queries]
    r["warm"] = [q["warm_ms"] for q in queries]
    with tempfile.TemporaryDirectory() as data:
        week_of_minutes(Path(data))
        r["stored_mib"] = sum(p.stat().st_size for p in Path(data).rglob("*") if p.is_file()) / 2**20
        r["startup"] = [startup(Path(data)) for _ in range(args.runs)]
    print(json.dumps({k: v for k, v in r.items() if k != "beside"}), flush=True)
    text = section(r)
    print(text)
    write(text)


if __name__ == "__main__":
    main()
