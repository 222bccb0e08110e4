"""100 viewers of the operations dashboard at a 5 s refresh for 2 minutes, against one Pulseboard process.

Each viewer (a tab of bench.tabs, all of them in one asyncio loop) sends the panel refresh
callback a browser sends (the same body, its render state returned as the browser returns it)
every 5 s, starting at a random moment of the first period.
Pulseboard runs as deployed: the README's gunicorn command, the host collected every second.
``--live N`` adds N viewers of the live WebSocket channel during the same run; ``--netdata`` then
serves the same number of viewers the same charts from Netdata (run it inside a network namespace
with only loopback, as ``bench.compare`` does, since Netdata reaches out otherwise).

    python -m bench.viewers [--viewers 100] [--seconds 120] [--live 0] [--netdata]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import threading
import time
from pathlib import Path

import psutil
import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from bench.history import deployed
from bench.peers import netdata_argv, netdata_viewers, running, tree_cpu, viewers_of
from bench.report import free_port, wait_for
from bench.tabs import run_tabs

ROOT = Path(__file__).resolve().parent.parent
REFRESH = 5.0
OUTPUT = (
    '..{"dashboard":["ALL"],"panel":["ALL"],"type":"panel-graph"}.figure'
    '...{"dashboard":["ALL"],"type":"panel-render-state"}.data...nav-last-update.children..'
)


STATE_ID = {"type": "panel-render-state", "dashboard": "operations"}
STATE_KEY = json.dumps(STATE_ID, sort_keys=True, separators=(",", ":"))  # how Dash names it in answers


def refresh_body(panels: list[str], tick: int, state: dict | None, variables: list[str]) -> dict:
    """The body of the refresh callback a browser on /operations sends."""
    return {
        "output": OUTPUT,
        "outputs": [
            [
                {"id": {"dashboard": "operations", "panel": p, "type": "panel-graph"}, "property": "figure"}
                for p in panels
            ],
            [{"id": STATE_ID, "property": "data"}],
            {"id": "nav-last-update", "property": "children"},
        ],
        "inputs": [
            {"id": "app-interval", "property": "n_intervals", "value": tick},
            {"id": "nav-time-range", "property": "value", "value": "15m"},
            {"id": "nav-custom-start", "property": "value", "value": None},
            {"id": "nav-custom-end", "property": "value", "value": None},
            {"id": "app-theme", "property": "data", "value": "light"},
            [
                {
                    "id": {"dashboard": "operations", "name": name, "type": "dashboard-variable"},
                    "property": "value",
                    "value": "",
                }
                for name in variables
            ],
        ],
        "changedPropIds": ["app-interval.n_intervals" if tick else "nav-time-range.value"],
        "state": [[{"id": STATE_ID, "property": "data", "value": state}]],
    }


def page_tab(url: str, panels: list[str], variables: list[str]):
    """One browser tab of /operations: the first render, then the refresh with the state it holds."""
    state = None

    async def refresh(http, tick: int) -> int:
        nonlocal state
        body = json.dumps(refresh_body(panels, tick, state, variables))
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        async with http.post(url + "/_dash-update-component", data=body, headers=headers) as response:
            raw = await response.read()  # the bytes as sent, compressed
            if response.status not in (200, 204):
                raise ValueError(f"HTTP {response.status}")
            if response.status == 200:
                text = gzip.decompress(raw) if response.headers.get("Content-Encoding") == "gzip" else raw
                state = json.loads(text)["response"][STATE_KEY]["data"]
            return len(raw)

    return refresh


class LiveViewer(threading.Thread):
    """One viewer of the live channel: connects, then reads every update until the end."""

    def __init__(self, url: str, start: float, end: float):
        super().__init__(daemon=True)
        self.url = url.replace("http://", "ws://") + "/api/v1/monitoring/ws/dashboard/operations"
        self.start_at, self.end = start, end
        self.updates = 0
        self.errors = 0

    def run(self) -> None:
        time.sleep(max(0.0, self.start_at - time.monotonic()))
        try:
            with connect(self.url, open_timeout=30) as ws:
                while time.monotonic() < self.end:
                    message = json.loads(ws.recv(timeout=30))
                    if message["type"] == "update":
                        self.updates += 1
                        ws.send('{"type": "ping"}')  # a sign of life now and then, as a client sends
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake):
            self.errors += 1


def run(viewers: int, seconds: float, live: int = 0) -> dict:
    settings = {}
    if live:  # room for the live viewers, all of them one (anonymous) user here
        settings = {
            "PULSEBOARD_SERVER__MAX_CONNECTIONS": str(live),
            "PULSEBOARD_SERVER__MAX_CONNECTIONS_PER_USER": str(live),
        }
    with deployed(**settings) as (url, proc):
        board = requests.get(url + "/api/v1/monitoring/dashboards/operations", timeout=5).json()
        panels = [p["id"] for p in board["dashboard"]["panels"]]
        variables = [v["name"] for v in board["dashboard"].get("variables", [])]
        server = psutil.Process(proc.pid)
        c0 = tree_cpu(server)  # gunicorn's worker is a child of the process started
        begin = time.monotonic() + 0.5
        watchers = [LiveViewer(url, begin + random.uniform(0, REFRESH), begin + seconds) for _ in range(live)]
        for watcher in watchers:
            watcher.start()
        tabs = run_tabs(lambda: page_tab(url, panels, variables), viewers, seconds, REFRESH)
        for watcher in watchers:
            watcher.join()
        cpu = tree_cpu(server) - c0
        wall = time.monotonic() - begin
    out = {
        "viewers": viewers,
        "seconds": seconds,
        **tabs.summary(),
        "cpu_percent_of_one_core": cpu / wall * 100,
    }
    if live:
        out["live"] = {
            "viewers": live,
            "errors": sum(w.errors for w in watchers),
            "updates_per_viewer_per_second": sum(w.updates for w in watchers) / live / seconds,
        }
    return out


def netdata(viewers: int, seconds: float) -> dict:
    """Netdata serving the same viewers the charts of the operations dashboard, in the same run."""
    port = free_port()
    with running(netdata_argv(port)) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/api/v1/charts", "netdata")
        time.sleep(20)  # its charts fill a little history first
        return viewers_of(
            psutil.Process(proc.pid), base, netdata_viewers, viewers=viewers, seconds=seconds, refresh=REFRESH
        )


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--live", type=int, default=0, help="viewers of the live channel beside them")
    parser.add_argument("--netdata", action="store_true", help="and Netdata's, in the same run")
    args = parser.parse_args()
    out = run(args.viewers, args.seconds, args.live)
    if args.netdata:
        out["netdata"] = netdata(args.viewers, args.seconds)
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
