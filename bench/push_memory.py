"""RSS growth of the production server while 1,000 series are filled through the JSON push:
`python -m bench.push_memory [SAMPLES_PER_SERIES]`.

The server is `python app.py --env production` (bench.ingest.Server); two clients push batches of
5 samples for each of 1,000 gauges (5,000 samples a request), in time order, one second
apart, so the series fill the raw tier as an application's would. RSS is the whole process tree's,
before the first push and after the last (with the read cache's bytes, from /status, beside it).
"""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil

from bench.ingest import API, Server

SERIES = 1000
BATCH = 5  # samples of each series a request carries: 5,000 in all, about 450 KB of JSON


def main(per_series: int = 3600, clients: int = 2) -> dict:
    server = Server()
    try:
        session = server.session()
        body = {"name": "bench_temperature_celsius", "type": "gauge", "labels": ["sensor"]}
        session.post(server.url + API + "/metrics/custom/register", json=body).raise_for_status()
        first = time.time() - per_series - 5
        steps = range(0, per_series, BATCH)
        time.sleep(2)
        before = server.rss()

        def push(part: list[int]) -> None:
            http = server.session()
            for k in part:
                samples = [
                    {
                        "name": "bench_temperature_celsius",
                        "labels": {"sensor": str(s)},
                        "value": (s + k) % 50,
                        "timestamp": first + k + j,
                    }
                    for j in range(BATCH)
                    for s in range(SERIES)
                ]
                server.record(http, samples)

        t0 = time.perf_counter()
        # Each client owns every other second of history, so both push in time order per series.
        parts = [list(steps)[c::clients] for c in range(clients)]
        threads = [threading.Thread(target=push, args=(p,)) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        time.sleep(6)  # a flush interval: what waits for it is written
        after = server.rss()
        children = psutil.Process(server.proc.pid).children()
        worker = children[0].pid if children else server.proc.pid  # gunicorn's worker, or the one process
        with open(f"/proc/{worker}/status") as f:
            kinds = {k: v.strip() for k, v in (line.split(":", 1) for line in f) if k.startswith("Rss")}
        status = session.get(server.url + API + "/status").json()
        return {
            "samples": SERIES * len(steps) * BATCH,
            "samples_per_s": round(SERIES * len(steps) * BATCH / elapsed),
            "rss_before_mib": round(before / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "growth_mib": round((after - before) / 2**20, 1),
            "worker": kinds,
            "store": status.get("store", {}),
        }
    finally:
        server.stop()


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 3600)
    store = result.pop("store")
    print(json.dumps(result), json.dumps({k: v for k, v in store.items() if k != "problems"}))
