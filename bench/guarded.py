"""Time one /operations refresh (all 16 panels redrawn) through the whole request path of a logged-in
operator: session, the permission guard, the callback reading through the caller's source, the figures.

Run with `python -m bench.guarded [REQUESTS]`; it prints p50 and p99 in milliseconds.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from bench.history import host_history
from dashboard_app.access.secrets import Secrets
from dashboard_app.runtime import Runtime
from dashboard_app.server import create_app
from dashboard_app.settings import load_settings

PASSWORD = "a-long-enough-password"
PANELS = (
    '..{"dashboard":["ALL"],"panel":["ALL"],"type":"panel-graph"}.figure'
    '...{"dashboard":["ALL"],"type":"panel-render-state"}.data...nav-last-update.children..'
)
ORIGIN = {"Origin": "http://localhost"}


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def refresh_body(panel_ids: list[str]) -> str:
    """The request a page sends when its time range changes: every panel is redrawn."""
    graphs = [
        {"id": {"type": "panel-graph", "dashboard": "operations", "panel": p}, "property": "figure"}
        for p in panel_ids
    ]
    return json.dumps(
        {
            "output": PANELS,
            "outputs": [
                graphs,
                [{"id": {"type": "panel-render-state", "dashboard": "operations"}, "property": "data"}],
                {"id": "nav-last-update", "property": "children"},
            ],
            "inputs": [
                {"id": "app-interval", "property": "n_intervals", "value": 1},
                {"id": "nav-time-range", "property": "value", "value": "15m"},
                {"id": "nav-custom-start", "property": "value", "value": None},
                {"id": "nav-custom-end", "property": "value", "value": None},
                {"id": "app-theme", "property": "data", "value": "light"},
                [],
            ],
            "state": [
                [
                    {
                        "id": {"type": "panel-render-state", "dashboard": "operations"},
                        "property": "data",
                        "value": None,
                    }
                ]
            ],
            "changedPropIds": ["nav-time-range.value"],
        }
    )


def guarded_refresh(requests: int = 200) -> dict:
    """Return p50 and p99 of an operator's full /operations refresh over 15 min of 1 s host readings."""
    clock = Clock(time.time() - 900)
    settings = load_settings("production", environ={})
    runtime = Runtime(settings, tempfile.mkdtemp(), clock=clock, secrets=Secrets("s" * 48, PASSWORD))
    host_history(runtime.store, clock, 900)
    runtime.users.set("olga", PASSWORD, "operator", ["operations"])
    client = create_app(runtime).server.test_client()
    client.post("/login", data={"user": "olga", "password": PASSWORD}, headers=ORIGIN)
    client.get("/operations")
    body = refresh_body([p.id for p in runtime.dashboards["operations"].panels])
    timings = []
    for _ in range(requests):
        clock.now = time.time()
        t0 = time.perf_counter()
        answer = client.post(
            "/_dash-update-component", data=body, headers={"Content-Type": "application/json", **ORIGIN}
        )
        timings.append(time.perf_counter() - t0)
        if answer.status_code != 200:
            raise SystemExit(f"refresh answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
    runtime.archive.close()
    timings.sort()
    return {"p50_ms": timings[len(timings) // 2] * 1000, "p99_ms": timings[int(len(timings) * 0.99)] * 1000}


if __name__ == "__main__":
    print(json.dumps(guarded_refresh(int(sys.argv[1]) if len(sys.argv) > 1 else 200)))
