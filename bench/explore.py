"""Explore's first graph and the editor's preview after a query is complete, over an hour of node_exporter
data, and the first open of an imported 30-panel Grafana dashboard against the shipped ones.

The data: every series a real node_exporter on this host exposes, one sample each 15 s over the last
59 minutes (counters rising, gauges moving), written by remote write to Pulseboard (the README's
production server, gunicorn) and, for the peer's figure, to Prometheus 2.42's remote-write receiver.

- *Explore* and *preview*: in headless Chromium, the query is put into the editor in one input event (as
  a paste, or the last key of typing) and the time runs until Plotly has drawn a graph with data.
- *Server time*: the same queries over the same hour and step by the Prometheus-compatible API, Pulseboard
  beside Prometheus (ratio).
- *Imported dashboard*: the first 30 panels of "Node Exporter Full" imported through the API; first open
  (navigation to every panel drawn) per panel, beside /operations, 7 loads each.

    python -m bench.explore [--runs 3]
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
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench import protocols
from bench.history import deployed
from bench.render import browser, first_render
from bench.report import free_port, wait_for
from ingest.prompb.remote_pb2 import WriteRequest

ROOT = Path(__file__).resolve().parent.parent
QUERIES = (
    'sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[1m]))',
    "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
    "rate(node_network_receive_bytes_total[5m])",
    "node_load1",
    "node_filesystem_avail_bytes / node_filesystem_size_bytes",
    "avg by (device) (rate(node_disk_io_time_seconds_total[1m]))",
)
SPAN, STEP = 59 * 60, 15.0
LOADS = 7
PUT = """
var el = document.querySelector(arguments[0]);
var setter = Object.getOwnPropertyDescriptor(window.HTMLTextAreaElement.prototype, 'value').set;
window.__drawn = null;
var plot = document.querySelector(arguments[1] + ' .js-plotly-plot');
if (!plot.__watched) {
  plot.__watched = true;
  plot.on('plotly_afterplot', function () {
    var meta = (plot.layout && plot.layout.meta) || {};
    var full = plot.data && plot.data.length && !meta.empty;
    if (window.__t0 && !window.__drawn && full) window.__drawn = performance.now();
  });
}
setter.call(el, arguments[2]);
window.__t0 = performance.now();
el.dispatchEvent(new Event('input', {bubbles: true}));
"""


def node_series(exporter: str) -> list[tuple[str, dict[str, str], float, bool]]:
    """Every sample node_exporter exposes now: name, labels, value, whether it is a counter."""
    text = requests.get(exporter, timeout=10).text
    out = []
    for family in text_string_to_metric_families(text):
        counter = family.type in ("counter", "histogram", "summary")
        for s in family.samples:
            labels = {**s.labels, "job": "node", "instance": "host:9100"}
            out.append(
                (s.name, labels, float(s.value), counter or s.name.endswith(("_bucket", "_count", "_sum")))
            )
    return out


def hour_of(series, now: float) -> list[bytes]:
    """Remote-write bodies holding every series over the last 59 minutes, oldest first."""
    bodies = []
    steps = int(SPAN / STEP)
    for k in range(steps + 1):
        t = now - SPAN + k * STEP
        request = WriteRequest()
        for i, (name, labels, value, counter) in enumerate(series):
            ts = request.timeseries.add()
            ts.labels.add(name="__name__", value=name)
            for key, v in sorted(labels.items()):
                ts.labels.add(name=key, value=v)
            if counter:
                v = value * (0.9 + 0.1 * k / steps) + (k * (i % 7 + 1))
            else:
                v = value * (1 + 0.05 * ((k + i) % 11 - 5) / 5)
            ts.samples.add(value=v, timestamp=int(t * 1000))
        bodies.append(bytes(cramjam.snappy.compress_raw(request.SerializeToString())))
    return bodies


def write(url: str, bodies: list[bytes]) -> None:
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    with requests.Session() as http:
        for body in bodies:
            answer = http.post(url, data=body, headers=headers, timeout=60)
            answer.raise_for_status()


def measure_put(driver, editor: str, graph: str, text: str, timeout: float = 20) -> float:
    """Milliseconds from the query being complete in the editor to its graph drawn with data."""
    driver.execute_script(PUT, editor, graph, text)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drawn = driver.execute_script("return window.__drawn && (window.__drawn - window.__t0);")
        if drawn:
            return float(drawn)
        time.sleep(0.005)
    raise RuntimeError(f"{text!r} was not drawn in {timeout:.0f} s")


def wait_css(driver, selector: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.find_elements("css selector", selector)
        if found:
            return found[0]
        time.sleep(0.05)
    raise RuntimeError(f"{selector} did not appear in {timeout:.0f} s")


def clear(driver, editor: str, graph: str) -> None:
    driver.execute_script(
        "var el = document.querySelector(arguments[0]);"
        "var setter = Object.getOwnPropertyDescriptor(window.HTMLTextAreaElement.prototype, 'value').set;"
        "window.__t0 = null; setter.call(el, ''); el.dispatchEvent(new Event('input', {bubbles: true}));",
        editor,
    )
    time.sleep(0.4)


def server_time(url: str, query: str, now: float) -> float:
    """Milliseconds a query_range over the hour at Explore's step takes (median of 5)."""
    params = {"query": query, "start": now - 3600, "end": now, "step": "6"}
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        answer = requests.get(url + "/api/v1/query_range", params=params, timeout=30)
        times.append((time.perf_counter() - t0) * 1000)
        answer.raise_for_status()
    return statistics.median(times)


def per_panel(opened: dict) -> str:
    seconds, panels = opened["median_s"], opened["panels"]
    return f"{seconds / panels * 1000:.0f} ms ({seconds:.2f} s / {panels})"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def one_run(series, exporter_data: list[bytes], now: float) -> dict:
    tmp = Path(tempfile.mkdtemp())
    prom, prom_url = protocols.prometheus(tmp, "--web.enable-remote-write-receiver")
    try:
        with deployed(900) as (url, _proc):
            write(url + "/api/v1/write", exporter_data)
            write(prom_url + "/api/v1/write", exporter_data)
            driver = browser()
            try:
                driver.get(url + "/explore?range=1h")
                wait_css(driver, "#explore-graph .js-plotly-plot")
                time.sleep(1.5)
                explore = []
                for _ in range(3):
                    for q in QUERIES:
                        clear(driver, "#explore-query", "#explore-graph")
                        explore.append(measure_put(driver, "#explore-query", "#explore-graph", q))
                driver.get(url + "/edit")
                wait_css(driver, ".editor-card")
                wait_css(driver, "#edit-new").click()
                wait_css(driver, "#edit-preview .js-plotly-plot")
                time.sleep(1.5)
                preview = []
                editor = ".edit-field-expr-0 textarea"
                for _ in range(3):
                    for q in QUERIES:
                        clear(driver, editor, "#edit-preview")
                        preview.append(measure_put(driver, editor, "#edit-preview", q))
                ours = [server_time(url, q, now) for q in QUERIES]
                theirs = [server_time(prom_url, q, now) for q in QUERIES]
                board = json.loads((ROOT / "tests/data/grafana/node-exporter-full.json").read_text())
                opened = [
                    c
                    for p in board["panels"]
                    for c in ([p] if p.get("type") != "row" else p.get("panels", []))
                ]
                board["panels"] = opened[:30]  # the first 30 panels, rows opened
                made = requests.post(
                    url + "/api/v1/monitoring/dashboards/import", json=board, timeout=30
                ).json()
                imported, shipped = [], []
                for _ in range(LOADS):  # in turn, so neither has the warmer browser
                    imported.append(first_render(driver, f"{url}/{made['id']}"))
                    shipped.append(first_render(driver, f"{url}/operations"))
                ops_panels = len(
                    requests.get(url + "/api/v1/monitoring/dashboards/operations", timeout=10).json()[
                        "dashboard"
                    ]["panels"]
                )
            finally:
                driver.quit()
    finally:
        prom.terminate()
        prom.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "explore_ms": {"median": statistics.median(explore), "p95": p95(explore), "n": len(explore)},
        "preview_ms": {"median": statistics.median(preview), "p95": p95(preview), "n": len(preview)},
        "server_ms": {"pulseboard": statistics.median(ours), "prometheus": statistics.median(theirs)},
        "imported": {"panels": len(made["dashboard"]["panels"]), "median_s": statistics.median(imported)},
        "shipped": {"panels": ops_panels, "median_s": statistics.median(shipped)},
        "series": len(series),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    exporter = subprocess.Popen(
        [
            shutil.which("prometheus-node-exporter") or "prometheus-node-exporter",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/metrics", "node_exporter")
        series = node_series(f"http://127.0.0.1:{port}/metrics")
    finally:
        exporter.terminate()
        exporter.wait(10)
    runs = []
    for _ in range(args.runs):
        now = time.time()
        runs.append(one_run(series, hour_of(series, now), now))
        print(json.dumps(runs[-1]), flush=True)
    print(
        "\n| run | Explore first graph, median / p95 | preview, median / p95 | query_range (Pulseboard / ",
        end="",
    )
    print("Prometheus) | imported 30-panel open, per panel | /operations, per panel |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        e, p, s = r["explore_ms"], r["preview_ms"], r["server_ms"]
        imp, ship = r["imported"], r["shipped"]
        print(
            f"| {i} | {e['median']:.0f} / {e['p95']:.0f} ms | {p['median']:.0f} / {p['p95']:.0f} ms | "
            f"{s['pulseboard']:.1f} / {s['prometheus']:.1f} ms "
            f"({s['pulseboard'] / s['prometheus']:.2f}×) | "
            f"{per_panel(imp)} | {per_panel(ship)} |"
        )


if __name__ == "__main__":
    main()
