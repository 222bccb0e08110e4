"""The same numbers everywhere: for every shipped panel, what the page draws, its CSV, the REST query,
``/api/v1/query_range``, an alert evaluated at a step, and the same panel read through a real Prometheus
holding the same samples, all agree."""

from __future__ import annotations

import csv
import io
import math
import time

import cramjam
import numpy as np
import pandas as pd
import pytest
import requests

from dashboard_app.analysis.csv_export import panel_csv
from dashboard_app.config_dir import ConfigDir
from dashboard_app.pages.panels import Window, bucket_step, panel_frame, query_frame
from dashboard_app.runtime import Runtime
from ingest.prompb.remote_pb2 import WriteRequest
from layouts.dashboards import load_dashboards
from query.evaluate import Query
from query.promql.shorthand import expand
from tests.servers import prometheus_server, quiet_settings, serving
from tsdb.aggregator import SeriesInfo, series_frame

SPAN = 7200.0  # 30 s steps at 240 points: zoomed out alike for either source (lows and highs drawn)
SETTINGS = {
    "store__raw__retention": "6h",
    "collectors__system__interval": "1",  # a live page's collection: $__rate_interval alike everywhere
    "demo": "true",
}


def copy_store(runtime: Runtime, url: str) -> int:
    """Send every sample of the store to a remote-write receiver, oldest first, in slices of time."""
    store, now = runtime.store, time.time()
    serieses = [s for name in store.names() for s in store.series(name)]
    data = [(s, *store.read_raw(s.id, now - 86400, now + 60, numbers_only=False)) for s in serieses]
    start = min((ts[0] for _, ts, _ in data if len(ts)), default=now)
    sent = 0
    for lower in np.arange(start, now + 61, 120.0):
        request = WriteRequest()
        for series, ts, val in data:
            keep = (ts >= lower) & (ts < lower + 120)
            if not keep.any():
                continue
            out = request.timeseries.add()
            for key, value in sorted({"__name__": series.name, **series.label_dict}.items()):
                out.labels.add(name=key, value=value)
            for t, v in zip(ts[keep], val[keep]):
                out.samples.add(value=float(v), timestamp=round(float(t) * 1000))
                sent += 1
        body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
        answer = requests.post(url, data=body, headers={"Content-Encoding": "snappy"}, timeout=30)
        assert answer.status_code in (200, 204), answer.text
    return sent


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An embedded Pulseboard with demo, host and own metrics; a Prometheus with the same samples;
    a second Pulseboard reading that Prometheus."""
    tmp = tmp_path_factory.mktemp("same")
    runtime = Runtime(quiet_settings(**SETTINGS), tmp / "embedded")
    runtime.demo.backfill(2 * SPAN)
    try:
        with (
            serving(runtime) as pb,
            prometheus_server(tmp, {}, flags=("--web.enable-remote-write-receiver",), retention="1d") as prom,
        ):
            for _ in range(12):  # live seconds of the host, the demo and Pulseboard's own requests
                for job in ("system", "self", "demo"):
                    runtime.scheduler.run_once(job)
                requests.get(pb.url + "/api/v1/monitoring/metrics/stats", timeout=10)
                time.sleep(1)
            now = time.time()
            assert copy_store(runtime, prom + "/api/v1/write") > 10_000
            reading = Runtime(
                # The embedded source's collection interval is the demo's and its own, 5 s: the same here.
                quiet_settings(source="prometheus", prometheus__url=prom, prometheus__scrape_interval="5"),
                tmp / "scaled",
            )
            yield runtime, pb, prom, reading, Window(now - SPAN, now)
    finally:
        runtime.archive.close()


def shipped_panels() -> list[tuple[str, str]]:
    boards = load_dashboards(ConfigDir().dashboards)
    return [(board.id, panel.id) for board in boards.values() for panel in board.panels]


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-6 * max(abs(a), abs(b))


def frames_agree(ours: pd.DataFrame, theirs: pd.DataFrame, what: str) -> None:
    assert sorted(map(str, ours.columns)) == sorted(map(str, theirs.columns)), what
    theirs = theirs[ours.columns]
    assert list(ours.index) == list(theirs.index), what
    a, b = ours.to_numpy(dtype=float), theirs.to_numpy(dtype=float)
    bad = [(i, j) for i in range(a.shape[0]) for j in range(a.shape[1]) if not close(a[i, j], b[i, j])]
    assert not bad, (
        f"{what}: {len(bad)} values differ, first {ours.index[bad[0][0]]} {a[bad[0]]} vs {b[bad[0]]}"
    )


def prometheus_frame(prom: str, text: str, ask: Query) -> pd.DataFrame:
    body = {"query": text, "start": ask.start, "end": ask.end, "step": ask.step}
    answer = requests.post(prom + "/api/v1/query_range", data=body, timeout=30).json()
    assert answer["status"] == "success", answer
    columns = []
    for item in answer["data"]["result"]:
        values = np.asarray(item["values"], dtype=float).reshape(-1, 2)
        name = item["metric"].get("__name__") or ask.name or ""
        labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
        columns.append((SeriesInfo(name, labels), values[:, 0], values[:, 1]))
    columns.sort(key=lambda c: sorted(c[0].labels.items()))
    return series_frame(columns, ask.legend, ask.step)


@pytest.mark.parametrize("dashboard_id, panel_id", shipped_panels())
def test_a_shipped_panel_has_the_same_numbers_on_the_page_csv_apis_alert_and_prometheus(
    world, dashboard_id, panel_id
):
    runtime, pb, prom, reading, window = world
    panel = runtime.dashboards[dashboard_id].panel(panel_id)
    source = runtime.source
    drawn = panel_frame(source, panel, window, runtime.settings.dashboards.points)
    # The CSV holds what the page draws.
    rows = list(csv.reader(io.StringIO(panel_csv(source, panel, window, runtime.settings.dashboards.points))))
    shown = drawn[drawn.index >= pd.Timestamp(window.start, unit="s", tz="UTC")]
    assert len(rows) - 1 == len(shown)
    for row, (_, values) in zip(rows[1:], shown.iterrows()):
        assert all(
            close(float(c) if c else math.nan, v) for c, v in zip(row[1:], values.to_numpy(dtype=float))
        )
    # The same panel read through Prometheus, from the same samples, draws the same numbers.
    frames_agree(
        drawn, panel_frame(reading.source, panel, window, runtime.settings.dashboards.points), "Prometheus"
    )
    step, _ = bucket_step(source, panel, window.span, runtime.settings.dashboards.points)
    start = window.start - window.span if panel.type == "stat" else window.start
    for q in panel.queries:
        ours = query_frame(source, q, start, window.end, step)
        ask = Query(q.compiled.promql, start, window.end, step, q.legend, q.metric).aligned()
        text = expand(q.compiled.promql, step, source.scrape_interval, ask.end - ask.start)
        frames_agree(ours, prometheus_frame(prom, text, ask), f"{q.expr} on Prometheus")
        # Pulseboard's own Prometheus API and REST query give those numbers too.
        frames_agree(ours, prometheus_frame(pb.url, text, ask), f"{q.expr} on /api/v1/query_range")
        rest = pb.call(
            "POST",
            "/metrics/query",
            {"query": q.compiled.promql, "start": ask.start, "end": ask.end, "step": step},
        )
        assert rest.status_code == 200, rest.text
        points = sum(len(s["points"]) for s in rest.json()["series"])
        assert points == int(ours.notna().to_numpy().sum()), q.expr
        # An alert on the query, evaluated at the last step, sees the last point.
        if not ours.empty:
            at = ask.end
            values = sorted(v for _, v in source.instant(text, at) if math.isfinite(v))
            last = ours[ours.index == pd.Timestamp(at, unit="s", tz="UTC")]
            expected = sorted(v for v in last.to_numpy(dtype=float).ravel() if math.isfinite(v))
            assert len(values) == len(expected) and all(close(a, b) for a, b in zip(values, expected)), q.expr
