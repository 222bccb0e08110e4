"""Replicas on one state database: a login and a page refresh against PostgreSQL beside SQLite, and the
time another replica takes to tell an alert's change after the replica telling it is killed (kill -9).

Everything runs as users run it: the README's production command (gunicorn) for each replica, reading
from the real Prometheus 2.42 that scrapes a Pulseboard agent collecting every second, and taking what
the replicas forward by remote write; PostgreSQL 15 in a cluster made for the run.

- *Login*: ``POST /login`` with a right password (the password hash is checked: scrypt), alternately on
  a replica on PostgreSQL and one on SQLite, and the ``/operations`` refresh callback (16 panels, a
  logged-in operator, each request reading the session's generation from the database), alternately.
- *Takeover*: two replicas on PostgreSQL, ``alerts.interval`` 1 s and 15 s (the default). A rule fires
  and is told (a webhook); the replica that evaluates is killed with SIGKILL (its worker too), the
  firing value is replaced by a clearing one at once, and the clock runs until (a) the other replica
  holds the lease and (b) the webhook has the resolution. The webhook's count of firing and resolved
  messages is checked (one each).

    python -m bench.replicas [--runs 3] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from bench.report import free_port
from bench.viewers import refresh_body
from tests.servers import (
    REPLICA_ADMIN_PASSWORD,
    logged_in,
    new_database,
    postgres_cluster,
    prometheus_server,
    start_agent,
    start_replica,
    stop,
    wait_http,
)

API = "/api/v1/monitoring"
PASSWORD = "a-long-enough-password"
DEPTH = "bench_queue_depth"


class Hook(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        Hook.bodies.append(
            (time.monotonic(), json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _replica(tmp: Path, prometheus: str, **env: str) -> tuple[str, object]:
    port = free_port()
    proc = start_replica(port, tmp / f"replica-{port}", prometheus, **env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/login", proc, timeout=90)
    return url, proc


def _ms(values: list[float]) -> dict:
    values = sorted(values)
    return {"median": statistics.median(values) * 1000, "p95": values[int(len(values) * 0.95)] * 1000}


def requests_compared(tmp: Path, prometheus: str, postgres: str, count: int) -> dict:
    """Login and refresh timings on a replica on PostgreSQL and one on SQLite, alternately."""
    tmp.mkdir(parents=True, exist_ok=True)
    kinds = {"postgresql": new_database(postgres), "sqlite": f"sqlite:///{tmp / 'state.sqlite'}"}
    unlimited = {"PULSEBOARD_AUTH__LOGIN_RATE_LIMIT": "100000", "PULSEBOARD_AUTH__RATE_LIMIT": "100000"}
    started = {
        kind: _replica(tmp, prometheus, PULSEBOARD_DATABASE__URL=url, **unlimited)
        for kind, url in kinds.items()
    }
    try:
        sessions, panels = {}, None
        for kind, (url, _) in started.items():
            admin = logged_in(url, "admin", REPLICA_ADMIN_PASSWORD)
            made = admin.post(
                url + API + "/users",
                json={"name": "olga", "password": PASSWORD, "role": "operator", "access": ["operations"]},
            )
            assert made.status_code == 201, made.text
            sessions[kind] = logged_in(url, "olga", PASSWORD)
            sessions[kind].get(url + "/operations")
            panels = [
                p["id"] for p in admin.get(url + API + "/dashboards/operations").json()["dashboard"]["panels"]
            ]
        timings = {kind: {"login": [], "refresh": []} for kind in started}
        for n in range(count):
            for kind, (url, _) in started.items():
                body = refresh_body(panels, n + 1, None, ["instance"])
                t0 = time.perf_counter()
                answer = sessions[kind].post(url + "/_dash-update-component", json=body)
                timings[kind]["refresh"].append(time.perf_counter() - t0)
                assert answer.status_code in (200, 204), answer.text[:300]
            if n % 2 == 0:  # a login costs a password hash: half as many
                for kind, (url, _) in started.items():
                    t0 = time.perf_counter()
                    logged_in(url, "olga", PASSWORD)
                    timings[kind]["login"].append(time.perf_counter() - t0)
        return {kind: {what: _ms(v) for what, v in found.items()} for kind, found in timings.items()}
    finally:
        for _, proc in started.values():
            stop(proc)


def takeover(tmp: Path, prometheus: str, postgres: str, hook: str, interval: int) -> dict:
    """Seconds from killing the evaluating replica to the other holding the lease and telling."""
    database = new_database(postgres)
    env = {
        "PULSEBOARD_DATABASE__URL": database,
        "PULSEBOARD_ALERTS__INTERVAL": str(interval),
        "PULSEBOARD_ALERTS__WEBHOOKS": json.dumps([hook]),
    }
    started = [_replica(tmp, prometheus, **env) for _ in range(2)]
    Hook.bodies = []
    try:
        admin = logged_in(started[0][0], "admin", REPLICA_ADMIN_PASSWORD)
        made = admin.post(started[0][0] + API + "/keys", json={"name": "bench", "scopes": ["ingest"]})
        key = {"Authorization": f"Bearer {made.json()['key']}"}
        url = started[0][0]
        requests.post(
            url + API + "/metrics/custom/register", json={"name": DEPTH, "type": "gauge"}, headers=key
        )
        rule = {"id": "bench-deep", "name": "Bench deep", "expr": f"{DEPTH} > 10", "severity": "critical"}
        assert admin.post(url + API + "/alerts/rules", json=rule).status_code == 201

        def push(target: str, value: float) -> None:
            body = {"samples": [{"name": DEPTH, "value": value}]}
            answer = requests.post(
                target + API + "/metrics/custom/record", json=body, headers=key, timeout=10
            )
            assert answer.status_code == 200, answer.text

        def told(status: str) -> list:
            return [t for t, b in Hook.bodies if b["status"] == status]

        push(url, 50)
        deadline = time.monotonic() + 4 * interval + 20
        while not told("firing") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert told("firing"), "the rule did not fire"
        time.sleep(interval + 1)

        def status(target: str) -> dict:
            return admin.get(target + API + "/status", timeout=5).json()["alerting"]

        evaluating = [(u, p) for u, p in started if status(u)["evaluates_here"]]
        assert len(evaluating) == 1
        survivor = next(u for u, _ in started if u != evaluating[0][0])
        killed = time.monotonic()
        stop(evaluating[0][1], signal.SIGKILL)
        push(survivor, 1)
        held = None
        while time.monotonic() < killed + 10 * interval + 20 and (held is None or not told("resolved")):
            if held is None and status(survivor)["evaluates_here"]:
                held = time.monotonic() - killed
            time.sleep(0.02)
        resolved = told("resolved")
        assert held is not None and resolved, "the other replica did not take over"
        time.sleep(interval + 1)
        return {
            "lease": held,
            "told": resolved[0] - killed,
            "firing_messages": len(told("firing")),
            "resolved_messages": len(told("resolved")),
        }
    finally:
        for _, proc in started:
            if proc.poll() is None:
                stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    tmp = Path(tempfile.mkdtemp(prefix="pulseboard-bench-replicas-"))
    (tmp / "prometheus").mkdir()
    agent_port = free_port()
    agent = start_agent(agent_port)
    try:
        wait_http(f"http://127.0.0.1:{agent_port}/metrics", agent)
        targets = {"bench-host": f"127.0.0.1:{agent_port}"}
        with (
            postgres_cluster() as postgres,
            prometheus_server(
                tmp / "prometheus", targets, flags=("--web.enable-remote-write-receiver",)
            ) as prometheus,
        ):
            time.sleep(10)  # some history for the panels
            for run in range(1, args.runs + 1):
                compared = requests_compared(tmp / f"run-{run}", prometheus, postgres, args.requests)
                line = {
                    "run": run,
                    **{f"{k}_{w}": v for k, found in compared.items() for w, v in found.items()},
                }
                for interval in (1, 15):
                    line[f"takeover_{interval}s"] = takeover(
                        tmp / f"run-{run}-{interval}", prometheus, postgres, hook, interval
                    )
                print(json.dumps(line), flush=True)
    finally:
        stop(agent)
        server.shutdown()


if __name__ == "__main__":
    main()
