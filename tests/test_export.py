"""CSV exports over real HTTP: the same numbers as the query API, panels as drawn, a zip per dashboard."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import datetime

import pytest

import dashboard_app.analysis.csv_export
from dashboard_app.pages.panels import Window, panel_frame
from tsdb.metrics import Sample

ORDERS = "shop_orders_total"


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def orders(pulseboard):
    """Ten minutes of orders in two regions, a counter pushed every 5 s."""
    body = {"name": ORDERS, "type": "counter", "unit": "count", "labels": ["region"]}
    assert pulseboard.call("POST", "/metrics/custom/register", body).status_code == 201
    now = time.time()
    samples = [
        {"name": ORDERS, "labels": {"region": region}, "value": (i % 4) + k, "timestamp": now - 600 + 5 * i}
        for i in range(120)
        for k, region in enumerate(("eu", "us"))
    ]
    assert pulseboard.call("POST", "/metrics/custom/record", {"samples": samples}).ok
    return now


@pytest.mark.parametrize("agg", ["avg", "max", "last", "rate", "p95"])
def test_the_csv_export_has_the_query_apis_numbers(pulseboard, orders, monkeypatch, agg):
    monkeypatch.setattr(
        dashboard_app.analysis.csv_export, "CHUNK_POINTS", 7
    )  # many chunks: their seams must not show
    params = {"query": ORDERS, "start": orders - 600, "end": orders, "step": 15, "agg": agg}
    response = pulseboard.call("GET", "/metrics/export.csv", params=params)
    assert response.ok and response.headers["Content-Type"].startswith("text/csv")
    assert 'filename="shop_orders_total.csv"' in response.headers["Content-Disposition"]
    header, *body = rows(response.text)
    assert header == [
        "time",
        'shop_orders_total{region="eu"} [count]',
        'shop_orders_total{region="us"} [count]',
    ]
    query = {"query": ORDERS, "start": orders - 600, "end": orders, "step": 15, "aggregation": agg}
    api = pulseboard.call("POST", "/metrics/query", query).json()["series"]
    for column, series in enumerate(api, start=1):
        from_csv = [(round(seconds(r[0]), 3), float(r[column])) for r in body if r[column] != ""]
        assert from_csv == [(round(t, 3), v) for t, v in series["points"]]
        assert len(from_csv) > 30


def test_several_selectors_go_side_by_side(pulseboard, orders):
    params = [("query", f'{ORDERS}{{region="us"}}'), ("query", f'{ORDERS}{{region="eu"}}')]
    params += [("start", orders - 60), ("end", orders), ("step", 5), ("agg", "last")]
    header, first, *_ = rows(pulseboard.call("GET", "/metrics/export.csv", params=params).text)
    assert header[1].startswith('shop_orders_total{region="us"}') and header[2].startswith(
        'shop_orders_total{region="eu"}'
    )
    assert float(first[1]) > float(first[2])  # us counts one more each time


@pytest.mark.parametrize(
    "params, field",
    [
        ({"start": 0, "step": 5}, "query"),
        ({"query": ORDERS, "step": 5}, "start"),
        ({"query": ORDERS, "start": 0, "step": 0}, "step"),
        ({"query": ORDERS, "start": 0, "step": 0.0001}, "step"),
        ({"query": ORDERS, "start": time.time() - 60, "step": 5, "agg": "mode"}, "agg"),
        ({"query": "shop{x=y}", "start": time.time() - 60, "step": 5}, "query"),
    ],
)
def test_bad_export_requests_get_a_400(pulseboard, params, field):
    response = pulseboard.call("GET", "/metrics/export.csv", params=params)
    assert response.status_code == 400 and response.json()["field"] == field


def test_a_panel_csv_holds_what_the_panel_draws(pulseboard):
    runtime = pulseboard.runtime
    now = time.time()
    runtime.store.append(
        Sample("pulseboard_system_cpu_usage_ratio", (), 0.1 + 0.01 * (i % 10), now - 300 + i)
        for i in range(300)
    )
    text = pulseboard.call(
        "GET", "/dashboards/operations/panels/cpu-total/export.csv", params={"range": "5m"}
    ).text
    header, *body = rows(text)
    assert header == ["time", "all cores [ratio]"]
    panel = runtime.dashboards["operations"].panel("cpu-total")
    frame = panel_frame(runtime.source, panel, Window(now - 300, now), runtime.settings.dashboards.points)
    drawn = {round(t.timestamp(), 3): v for t, v in frame["all cores"].dropna().items()}
    exported = {round(seconds(t), 3): float(v) for t, v in body}
    common = set(drawn) & set(exported)  # the server's window ends a moment later than this one
    assert len(common) >= len(drawn) - 3
    assert all(exported[t] == pytest.approx(drawn[t]) for t in common)


def test_a_dashboard_zip_has_a_csv_per_panel(pulseboard):
    response = pulseboard.call("GET", "/dashboards/operations/export.zip", params={"range": "15m"})
    assert response.ok and response.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    panels = pulseboard.runtime.dashboards["operations"].panels
    assert names == [f"operations-{p.id}.csv" for p in panels]
    bad = pulseboard.call("GET", "/dashboards/operations/export.zip", params={"range": "2y"})
    assert bad.status_code == 400 and bad.json()["field"] == "range"
    missing = pulseboard.call("GET", "/dashboards/operations/panels/nope/export.csv")
    assert missing.status_code == 404 and "cpu-total" in missing.json()["error"]
