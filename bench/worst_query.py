"""RSS of the production server after the heaviest PromQL queries a reader can send:
`python -m bench.worst_query`.

The server is `python app.py --env production` (bench.ingest.Server) holding 10,000 series of a
gauge, one sample a minute for the last hour (pushed as an application would). Then, one after
the other, each query of QUERIES over that hour through `/api/v1/query_range`: its answer, its time
and the whole process tree's RSS after it. Run it in two checkouts to compare them.
"""

from __future__ import annotations

import json
import time

from bench.ingest import API, Server

SERIES, MINUTES = 10_000, 60
QUERIES = (
    ("topk(5, bench_level)", 1),  # 10,000 series x 3,601 steps
    ('{__name__=~"bench_.*"}', 1),
    ("bench_level", 10),  # 10,000 series x 361 steps
)


def main() -> list[dict]:
    server = Server()
    rows = []
    try:
        http = server.session()
        body = {"name": "bench_level", "type": "gauge", "labels": ["sensor"]}
        http.post(server.url + API + "/metrics/custom/register", json=body).raise_for_status()
        now = time.time()
        for start in range(0, SERIES, 1000):
            for minute in range(0, MINUTES, 5):
                samples = [
                    {
                        "name": "bench_level",
                        "labels": {"sensor": str(s)},
                        "value": s % 7,
                        "timestamp": now - 3600 + (minute + m) * 60,
                    }
                    for m in range(5)
                    for s in range(start, start + 1000)
                ]
                server.record(http, samples)
        time.sleep(6)
        rows.append({"query": "(filled)", "rss_mib": round(server.rss() / 2**20)})
        for query, step in QUERIES:
            t0 = time.perf_counter()
            answer = http.post(
                server.url + "/api/v1/query_range",
                timeout=600,
                data={"query": query, "start": now - 3600, "end": now, "step": step},
            )
            seconds = time.perf_counter() - t0
            time.sleep(2)
            rows.append(
                {
                    "query": f"{query} step {step}s",
                    "status": answer.status_code,
                    "seconds": round(seconds, 2),
                    "rss_mib": round(server.rss() / 2**20),
                }
            )
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    for row in main():
        print(json.dumps(row))
