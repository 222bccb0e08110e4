"""Grafana dashboards from public sources, imported over HTTP, drawn from real node_exporter and Prometheus.

The files in tests/data/grafana: ``node-exporter-full.json`` is grafana.com's "Node Exporter Full" (1860)
as rfmoz/grafana-dashboards publishes it; ``node-exporter-full-old.json`` its Grafana 4 version (rows
of panels, ``graph`` and ``singlestat``, node_exporter's names before 0.16); ``prometheus-2-stats.json``
the panels of Grafana's bundled "Prometheus 2.0 Stats"; ``node-exporter-dashboard-20240520.json``
grafana.com's "Node Exporter Dashboard 20240520 JOB grouping" (16098) as starsliao/Prometheus publishes it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import pytest

from dashboard_app.runtime import Runtime
from layouts import grafana
from layouts.schema import GRID_COLUMNS, Dashboard
from query.promql.variables import stand_in
from tests.servers import node_exporter, prometheus_server, quiet_settings, serving

DATA = Path(__file__).parent / "data" / "grafana"
FILES = (
    "node-exporter-full",
    "node-exporter-full-old",
    "prometheus-2-stats",
    "node-exporter-dashboard-20240520",
)


def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.mark.parametrize("name", FILES)
def test_every_grafana_panel_is_mapped_placed_and_reported(name):
    raw = load(name)
    imported = grafana.read(raw)
    dashboard = Dashboard.model_validate(imported.dashboard)
    grafana_panels = [p for p in _flat(raw) if p.get("type") != "row"]
    # Every Grafana panel is in the report and on the dashboard: none silently gone.
    assert len(imported.panels) == len(grafana_panels) == len(dashboard.panels)
    assert sorted(p["title"] for p in imported.panels) == sorted(p.get("title", "") for p in grafana_panels)
    assert all(p["mapped"] for p in imported.panels), [p for p in imported.panels if not p["mapped"]]
    # Panels keep Grafana's order and never overlap on the 12-column grid.
    cells = set()
    for panel in dashboard.panels:
        g = panel.grid
        assert g.x + g.w <= GRID_COLUMNS
        mine = {(x, y) for x in range(g.x, g.x + g.w) for y in range(g.y, g.y + g.h)}
        assert not mine & cells, f"{panel.id} overlaps another panel"
        cells |= mine


def _flat(raw: dict) -> list[dict]:
    if "rows" in raw:
        return [p for row in raw["rows"] for p in row.get("panels", [])]
    out = []
    for p in raw["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def test_grafana_variables_units_legends_and_thresholds_come_across():
    imported = grafana.read(load("node-exporter-full"))
    variables = {v["name"]: v for v in imported.dashboard["variables"]}
    assert variables["node"] == {
        "name": "node",
        "title": "Instance",
        "label": "instance",
        "narrow": False,
        "values_from": "node_uname_info",
    }
    assert {v["name"]: v["mapped"] for v in imported.variables} == {
        "ds_prometheus": False,
        "job": True,
        "nodename": True,
        "node": True,
    }
    panels = {p["id"]: p for p in imported.dashboard["panels"]}
    busy = panels["cpu-busy"]
    assert busy["type"] == "gauge" and busy["unit"] == "percent" and (busy["min"], busy["max"]) == (0, 100)
    assert busy["thresholds"] == {"warn": 85.0, "crit": 95.0, "direction": "above"}
    assert (
        "$__rate_interval" in busy["queries"][0]["expr"] and 'instance="$node"' in busy["queries"][0]["expr"]
    )
    traffic = panels["network-traffic-basic"]
    assert traffic["unit"] == "bits_per_second" and traffic["queries"][0]["legend"] == "Rx {device}"
    stats = {p["id"]: p for p in grafana.read(load("prometheus-2-stats")).dashboard["panels"]}
    assert stats["rule-group-eval-activity"]["stack"] is True
    assert (
        stats["scrape-duration"]["unit"] == "seconds"
        and stats["scrape-duration"]["queries"][0]["legend"] == "{job}"
    )
    old = grafana.read(load("node-exporter-full-old"))
    port = next(v for v in old.dashboard["variables"] if v["name"] == "port")
    assert port["regex"] == "[^:]+:(.*)" and port["label"] == "instance"


def test_what_cannot_be_mapped_becomes_a_panel_that_says_why():
    board = {
        "title": "Mixed",
        "templating": {
            "list": [
                {
                    "name": "iv",
                    "type": "interval",
                    "query": "1m,5m,10m",
                    "auto": True,
                    "current": {"value": "5m"},
                },
                {
                    "name": "env",
                    "type": "custom",
                    "query": "prod : production,staging",
                    "current": {"value": "staging"},
                },
                {"name": "filters", "type": "adhoc"},
            ]
        },
        "panels": [
            {
                "type": "text",
                "title": "Read me",
                "gridPos": {"x": 0, "y": 0, "w": 24, "h": 3},
                "options": {"content": "# Runbook\nCall the on-call."},
            },
            {
                "type": "logs",
                "title": "Logs",
                "gridPos": {"x": 0, "y": 3, "w": 12, "h": 8},
                "targets": [{"expr": '{app="shop"}', "datasource": {"type": "loki"}}],
            },
            {
                "type": "timeseries",
                "title": "Loki only",
                "gridPos": {"x": 12, "y": 3, "w": 12, "h": 8},
                "targets": [{"refId": "A", "datasource": {"type": "loki"}}],
            },
            {
                "type": "timeseries",
                "title": "Broken",
                "gridPos": {"x": 0, "y": 11, "w": 12, "h": 8},
                "targets": [{"expr": "rate(up[5m]"}],
            },
            {
                "type": "timeseries",
                "title": "Rate",
                "gridPos": {"x": 12, "y": 11, "w": 12, "h": 8},
                "targets": [
                    {
                        "expr": 'rate(http_requests_total{env="[[env]]"}[$iv])',
                        "legendFormat": "{{ code }} ({x})",
                    }
                ],
            },
        ],
    }
    imported = grafana.read(board)
    Dashboard.model_validate(imported.dashboard)
    report = {p["title"]: p for p in imported.panels}
    panels = {p["title"]: p for p in imported.dashboard["panels"]}
    assert panels["Read me"]["text"].startswith("# Runbook") and panels["Read me"]["queries"] == []
    assert "logs panel has no Pulseboard chart" in panels["Logs"]["text"]
    assert "data source loki" in report["Loki only"]["note"]
    assert "Not drawn" in panels["Broken"]["text"] and not report["Broken"]["mapped"]
    assert panels["Rate"]["queries"][0] == {
        "expr": 'rate(http_requests_total{env="[[env]]"}[$iv])',  # the value is put in when drawn
        "legend": "{code} ({{x}})",
    }
    variables = {v["name"]: v for v in imported.dashboard["variables"]}
    assert variables["iv"] == {
        "name": "iv",
        "title": "iv",
        "kind": "interval",
        "values": ["$__interval", "1m", "5m", "10m"],
        "default": "5m",
    }
    assert (
        variables["env"]["values"] == ["production", "staging"] and variables["env"]["default"] == "staging"
    )
    assert [v["mapped"] for v in imported.variables] == [True, True, False]
    with pytest.raises(grafana.GrafanaError):
        grafana.read({"title": "no panels"})


def _drawn(text: str) -> bool:
    """Whether a panel's CSV holds at least one finite number."""
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows[1:]:
        for cell in row[1:]:
            try:
                if math.isfinite(float(cell)):
                    return True
            except ValueError:
                continue
    return False


def _metrics(panel: dict) -> set[str]:
    from query.promql.printer import metric_names
    from query.promql.shorthand import expand

    return {m for q in panel["queries"] for m in metric_names(expand(stand_in(q["expr"]), 60, 15))}


@pytest.fixture(scope="module")
def exporters(tmp_path_factory):
    """A real node_exporter scraped by a real Prometheus every second (and Prometheus scraping itself)."""
    tmp = tmp_path_factory.mktemp("grafana")
    with node_exporter() as metrics:
        address = metrics.removeprefix("http://").removesuffix("/metrics")
        own = "  - job_name: prometheus\n    static_configs:\n      - targets: ['{self}']\n"
        with prometheus_server(tmp, {address: address}, extra=own) as prometheus:
            time.sleep(8)  # a few scrapes: every rate has two samples
            yield metrics, prometheus


@pytest.mark.parametrize("source", ["prometheus", "embedded"])
def test_imported_dashboards_draw_every_panel_whose_metrics_the_host_has(exporters, source, tmp_path):
    metrics, prometheus = exporters
    if source == "prometheus":
        settings = quiet_settings(
            source="prometheus", prometheus__url=prometheus, prometheus__scrape_interval="1"
        )
    else:
        scrape = [
            {"url": metrics, "job": "node", "interval": "1s"},
            {"url": prometheus + "/metrics", "job": "prometheus", "interval": "1s"},
        ]
        settings = quiet_settings(scrape=json.dumps(scrape))
    runtime = Runtime(settings, tmp_path)
    if source == "embedded":
        runtime.start()
        time.sleep(8)
    try:
        with serving(runtime) as pb:
            names = set(_names(pb))
            results = {}
            for name in FILES:
                answer = pb.call("POST", "/dashboards/import", load(name))
                assert answer.status_code == 201, answer.text
                body = answer.json()
                assert body["url"] == f"/{body['id']}" and body["report"]["mapped"] == len(
                    body["report"]["panels"]
                )
                assert pb.call("GET", f"/dashboards/{body['id']}").status_code == 200
                drawn, expected, missing = 0, 0, []
                panels = {p["id"]: p for p in body["dashboard"]["panels"]}
                for entry in body["report"]["panels"]:
                    panel = panels[entry["id"]]
                    csv_answer = pb.call(
                        "GET", f"/dashboards/{body['id']}/panels/{entry['id']}/export.csv?range=5m"
                    )
                    assert csv_answer.status_code == 200, csv_answer.text
                    has_metrics = _metrics(panel) <= names
                    expected += has_metrics
                    if _drawn(csv_answer.text):
                        drawn += 1
                    elif has_metrics:
                        missing.append(entry["id"])
                results[name] = (len(panels), expected, drawn, missing)
            print(json.dumps(results))
            full, expected, drawn, missing = results["node-exporter-full"]
            # Nearly every panel draws: all but those reading collectors this host's node_exporter does not
            # run (systemd, hwmon, processes, ...), and at most three that compute only NaN here (no swap).
            assert drawn >= 0.8 * full and len(missing) <= 3, missing
            total, expected, drawn, missing = results["prometheus-2-stats"]
            assert drawn >= 10 and len(missing) <= 1, missing
            total, expected, drawn, missing = results["node-exporter-dashboard-20240520"]
            assert drawn == total, missing  # every panel of it reads what node_exporter runs by default
            total, expected, drawn, missing = results["node-exporter-full-old"]
            assert len(missing) <= 3, missing  # names before node_exporter 0.16: few exist, those draw
    finally:
        runtime.stop()


def _names(pb) -> list[str]:
    import requests

    answer = requests.get(pb.url + "/api/v1/label/__name__/values", timeout=10)
    return answer.json()["data"]


def test_a_query_result_variable_lists_the_label_its_regex_captures_and_keeps_no_regex():
    board = {
        "title": "Hosts",
        "templating": {
            "list": [
                {
                    "name": "host",
                    "type": "query",
                    "query": 'query_result(node_uname_info{job=~"$job"})',
                    "regex": '/.*instance="([^"]+)".*/',
                }
            ]
        },
        "panels": [{"type": "stat", "title": "Up", "targets": [{"expr": 'up{instance="$host"}'}]}],
    }
    [variable] = grafana.read(board).dashboard["variables"]
    assert variable == {
        "name": "host",
        "title": "host",
        "label": "instance",
        "narrow": False,
        "values_from": "node_uname_info",
    }
