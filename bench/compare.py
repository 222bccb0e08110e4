"""Run the side-by-side benchmarks and write their table into BENCHMARKS.md (``make bench``).

Each benchmark runs in a process of its own; the peers (Glances, Netdata) run in the same run,
inside a network namespace with only loopback, together with the Pulseboard they are compared with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- side by side: begin -->", "<!-- side by side: end -->"
ISOLATED = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def run(module: str, isolated: bool = False) -> dict:
    command = [sys.executable, "-m", module]
    if isolated and os.geteuid() == 0:
        command = ISOLATED + command
    print(f"running {module}…", file=sys.stderr, flush=True)
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs else "–"


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def cpu(r: dict) -> str:
    return f"{r['cpu_seconds_per_minute']:.2f} CPU-s/min ({r['percent_of_one_core']:.2f} %)"


def overhead_row(name: str, ours: dict, gl: dict, nd: dict) -> tuple:
    share = ours["percent_of_one_core"]
    worst = max(share / gl["percent_of_one_core"], share / nd["percent_of_one_core"])
    return (
        name,
        cpu(ours),
        f"Glances {cpu(gl)}; Netdata {cpu(nd)}",
        f"{ratio(share, gl['percent_of_one_core'])} Glances, "
        f"{ratio(share, nd['percent_of_one_core'])} Netdata",
        "≤ 0.5× each",
        verdict(worst <= 0.5),
    )


def table(peers: dict, viewers: dict, render: dict, zoom: dict) -> str:
    pb, agent, gl, nd = peers["pulseboard"], peers["pulseboard_agent"], peers["glances"], peers["netdata"]
    filled, nv, v = peers["pulseboard_filled"], nd["viewers"], viewers
    zooms = {k: z for k, z in zoom.items() if isinstance(z, dict)}
    nr = render["netdata"]
    kept = all(z.get("spike_kept") is not False and z.get("dip_kept") is not False for z in zooms.values())
    rows = [
        overhead_row(
            "Collection overhead at 1 s, whole app (collector, store, /metrics each second, alerts, flushes)",
            pb,
            gl,
            nd,
        ),
        overhead_row(
            "Collection overhead at 1 s, agent mode (what each host runs scaled out)", agent, gl, nd
        ),
        (
            "Memory: RSS with 1,000 series at production retention, every tier full",
            f"{filled['rss_mib']:.0f} MiB (store head {filled['store_mib']:.0f} MiB, "
            f"read cache {filled['parts_mib']['read cache']:.0f} MiB)",
            f"Netdata {nd['rss_mib']:.0f} MiB; Glances {gl['rss_mib']:.0f} MiB",
            ratio(filled["rss_mib"], nd["rss_mib"]),
            "≤ Netdata",
            verdict(filled["rss_mib"] <= nd["rss_mib"]),
        ),
        (
            "Memory: RSS of the agent collecting every second",
            f"{agent['rss_mib']:.0f} MiB",
            f"Netdata {nd['rss_mib']:.0f} MiB; Glances {gl['rss_mib']:.0f} MiB",
            f"{ratio(agent['rss_mib'], nd['rss_mib'])} Netdata",
            "≤ Netdata",
            verdict(agent["rss_mib"] <= nd["rss_mib"]),
        ),
        (
            f"Dashboard refresh: {v['viewers']} viewers of /operations at 5 s for {v['seconds']:.0f} s",
            f"p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms, {v['errors']} errors, "
            f"{v['cpu_percent_of_one_core']:.0f} % of a core ({v['refreshes']:,} refreshes)",
            f"Netdata, the same charts ({nv['charts']} requests a refresh): p50 {nv['p50_ms']:.1f} ms, "
            f"p99 {nv['p99_ms']:.1f} ms, {nv['errors']} errors, "
            f"{nv['cpu_percent_of_one_core']:.0f} % of a core",
            f"p99 {ratio(v['p99_ms'], nv['p99_ms'])}",
            "p99 ≤ 100 ms, 0 errors",
            verdict(v["p99_ms"] <= 100 and v["errors"] == 0),
        ),
        (
            "Bytes per refresh per viewer after the first load (on the wire, compressed)",
            f"{v['refresh_kib_median']:.1f} KiB median, {v['refresh_kib_p99']:.1f} KiB p99 "
            f"(first load {v['first_render_kib']:.1f} KiB)",
            f"Netdata {nv['refresh_kib_median']:.1f} KiB",
            ratio(v["refresh_kib_median"], nv["refresh_kib_median"]),
            "≤ 30 KB",
            verdict(v["refresh_kib_p99"] * 1024 <= 30_000),
        ),
        (
            "Time to first full render of /operations in headless Chromium (every panel drawn)",
            f"{render['median_seconds']:.2f} s median, {render['worst_seconds']:.2f} s worst, "
            f"{render['cold_seconds']:.2f} s with a cold cache",
            f"Netdata, the charts in view drawn: {nr['median_seconds']:.2f} s median, "
            f"{nr['worst_seconds']:.2f} s worst, {nr['cold_seconds']:.2f} s cold",
            f"{ratio(render['median_seconds'], nr['median_seconds'])} median, "
            f"{ratio(render['cold_seconds'], nr['cold_seconds'])} cold",
            "≤ 1.5 s",
            verdict(render["worst_seconds"] <= 1.5 and render["cold_seconds"] <= 1.5),
        ),
        (
            "Zoom: 30 days of 15 s samples in one panel, 30 d → 1 h, server time per zoom",
            ", ".join(f"{k} {z['median_ms']:.1f} ms" for k, z in zooms.items())
            + (
                "; a spike and a dip stay visible at every zoom that holds them"
                if kept
                else "; a peak was lost"
            ),
            "Netdata's data API for the same spans of system.cpu (an HTTP round trip; it holds only the "
            "minutes since it started): " + ", ".join(f"{k} {ms:.1f} ms" for k, ms in nr["zoom_ms"].items()),
            f"{ratio(zoom['worst_median_ms'], max(nr['zoom_ms'].values()))} (worst spans)",
            "≤ 50 ms, peaks kept",
            verdict(zoom["worst_median_ms"] <= 50 and kept),
        ),
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        f"Written by `make bench` (`python -m bench.compare`) on {stamp}, {os.cpu_count()} cores, Glances "
        "and Netdata from Debian, all in one run. CPU figures are medians of three half-minute windows.",
        "",
        "| measure | Pulseboard | peer, same run | ratio | target | |",
        "|---|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
        END,
    ]
    return "\n".join(lines)


def write(section: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Side by side with Glances and Netdata\n\n" + section + "\n"
    REPORT.write_text(text)


def main() -> None:
    results = {
        "peers": run("bench.peers", isolated=True),
        "viewers": run("bench.viewers"),
        "render": run("bench.render", isolated=True),  # with Netdata's dashboard beside it
        "zoom": run("bench.zoom"),
    }
    (ROOT / ".cache").mkdir(exist_ok=True)
    (ROOT / ".cache" / "bench-compare.json").write_text(json.dumps(results, indent=2))
    section = table(**results)
    write(section)
    print(section)


if __name__ == "__main__":
    main()
