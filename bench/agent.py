"""Collection as cheap as reading /proc: the agent beside a bare psutil loop and Netdata, in one run.

Run with `python -m bench.agent [--runs 3]`; it prints a Markdown table. Each process runs for a
warm-up and three half-minute windows, one after the other, on an otherwise idle machine; the median
window's CPU share is kept. The agent (`python app.py agent`, the host collected every second) is
scraped every second as Prometheus would; the psutil loop reads the same values once a second and
does nothing else (the floor any Python collector has); Netdata 1.37 runs with its packaged
configuration (1 s collection, more than 300 charts) and is scraped the same way. Run it inside a
network namespace with only loopback (``unshare -n``), as Netdata reaches out otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench import peers
from bench.peers import measure, netdata_argv
from bench.report import free_port

ROOT = Path(__file__).resolve().parent.parent

LOOP = """
import time, psutil
while True:
    tick = time.monotonic()
    psutil.cpu_times(); psutil.cpu_times(percpu=True); psutil.virtual_memory(); psutil.swap_memory()
    psutil.disk_io_counters(); psutil.net_io_counters(pernic=True); len(psutil.pids()); psutil.getloadavg()
    psutil.boot_time()
    for part in psutil.disk_partitions(all=False):
        psutil.disk_usage(part.mountpoint)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
"""


def agent() -> dict:
    port = free_port()
    argv = [sys.executable, "app.py", "agent", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    env["PULSEBOARD_SYSTEM_INTERVAL"] = "1"
    return measure("pulseboard agent", argv, f"http://127.0.0.1:{port}/metrics", env)


def psutil_loop() -> dict:
    script = Path(tempfile.mkdtemp()) / "loop.py"
    script.write_text(LOOP)
    return measure("psutil loop", [sys.executable, str(script)], None)


def netdata() -> dict:
    port = free_port()
    return measure(
        "netdata", netdata_argv(port), f"http://127.0.0.1:{port}/api/v1/allmetrics?format=prometheus"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=peers.WINDOW, help="seconds per measured window")
    args = parser.parse_args()
    peers.WINDOW = args.window
    runs = []
    for _ in range(args.runs):
        runs.append({"agent": agent(), "psutil loop": psutil_loop(), "netdata": netdata()})
    print(json.dumps(runs, indent=1))
    share = {name: [r[name]["percent_of_one_core"] for r in runs] for name in runs[0]}
    floor = [r["agent"]["percent_of_one_core"] / r["psutil loop"]["percent_of_one_core"] for r in runs]
    peer = [r["agent"]["percent_of_one_core"] / r["netdata"]["percent_of_one_core"] for r in runs]
    print("| | agent | psutil loop | Netdata | agent ÷ psutil loop | agent ÷ Netdata |")
    print("|---|---|---|---|---|---|")
    print(
        f"| % of one core | {min(share['agent']):.2f}–{max(share['agent']):.2f} "
        f"| {min(share['psutil loop']):.2f}–{max(share['psutil loop']):.2f} "
        f"| {min(share['netdata']):.2f}–{max(share['netdata']):.2f} "
        f"| {min(floor):.1f}–{max(floor):.1f}× | {min(peer):.2f}–{max(peer):.2f}× |"
    )


if __name__ == "__main__":
    main()
