"""Dashboards, connections, configuration, status and the OpenAPI document, over real HTTP."""

from __future__ import annotations

import re

import requests

from dashboard_app.api.frame import PREFIX
from dashboard_app.runtime import Runtime
from layouts.schema import MAX_PANELS
from tests.servers import quiet_settings, serving

SHOP = {
    "id": "shop",
    "title": "Shop",
    "access": "executive",
    "panels": [
        {
            "id": "orders",
            "title": "Orders per second",
            "type": "line",
            "unit": "per_second",
            "queries": [{"expr": "shop_orders_total", "agg": "rate", "legend": "{region}"}],
            "grid": {"x": 0, "y": 0, "w": 12, "h": 4},
        }
    ],
}


def test_a_created_dashboard_is_listed_served_and_kept_across_a_restart(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as pb:
        created = pb.call("POST", "/dashboards/create", SHOP)
        assert created.status_code == 201 and created.json()["url"] == "/shop"
        ids = [d["id"] for d in pb.call("GET", "/dashboards/list").json()["dashboards"]]
        assert ids == ["executive", "operations", "development", "shop"]
        assert pb.call("GET", "/dashboards/shop").json()["dashboard"]["panels"][0]["id"] == "orders"
        page = requests.get(pb.url + "/_dash-layout", timeout=10)
        assert page.ok and "nav-link-shop" in page.text  # in the navigation bar
    runtime.stop()
    assert (tmp_path / "state.sqlite").exists()  # the state database in the data directory
    again = Runtime(quiet_settings(), tmp_path)
    with serving(again) as pb:
        assert pb.call("GET", "/dashboards/shop").json()["title"] == "Shop"
    again.stop()


def test_update_and_delete_a_dashboard(pulseboard):
    assert pulseboard.call("POST", "/dashboards/create", SHOP).status_code == 201
    renamed = pulseboard.call("PUT", "/dashboards/shop", {**SHOP, "title": "Our shop"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Our shop"
    assert pulseboard.call("DELETE", "/dashboards/shop").json()["deleted"] == "shop"
    assert pulseboard.call("GET", "/dashboards/shop").status_code == 404
    assert pulseboard.runtime.dashboard_store.version("shop") == 0  # its versions went with it


def test_dashboard_rules(pulseboard):
    assert pulseboard.call("POST", "/dashboards/create", SHOP).status_code == 201
    duplicate = pulseboard.call("POST", "/dashboards/create", SHOP)
    assert duplicate.status_code == 409 and duplicate.json()["field"] == "id"
    shipped = pulseboard.call("DELETE", "/dashboards/operations")
    assert shipped.status_code == 403 and "ships with Pulseboard" in shipped.json()["error"]
    # An admin may change a shipped dashboard; deleting that saved version brings the shipped one back.
    changed = pulseboard.call("PUT", "/dashboards/operations", {**SHOP, "id": "operations"})
    assert changed.status_code == 200 and changed.json()["version"] == 1
    assert pulseboard.call("DELETE", "/dashboards/operations").status_code == 200
    back = pulseboard.call("GET", "/dashboards/operations").json()
    assert back["version"] == 0 and back["title"] == "Operations" and back["panels"] > 10
    mismatch = pulseboard.call("PUT", "/dashboards/shop", {**SHOP, "id": "other"})
    assert mismatch.status_code == 400 and mismatch.json()["field"] == "id"
    bad_panel = {**SHOP, "id": "bad", "panels": [{**SHOP["panels"][0], "type": "donut"}]}
    response = pulseboard.call("POST", "/dashboards/create", bad_panel)
    assert response.status_code == 400
    assert re.search(r"panel 'orders' field type: must be one of .*'line'", response.json()["error"])
    unknown = pulseboard.call("GET", "/dashboards/nope")
    assert unknown.status_code == 404 and "executive" in unknown.json()["error"]  # lists the known ids


def test_connections_are_capped_and_closed(tmp_path):
    runtime = Runtime(quiet_settings(server__max_connections="2"), tmp_path)
    with serving(runtime) as pb:
        first = pb.call("POST", "/dashboards/operations/connect")
        assert first.status_code == 201
        assert pb.call("POST", "/dashboards/executive/connect").status_code == 201
        full = pb.call("POST", "/dashboards/operations/connect")
        assert full.status_code == 429 and "2 live connections" in full.json()["error"]
        stats = pb.call("GET", "/dashboards/stats").json()
        assert stats["connections"] == 2 and stats["connections_by_dashboard"]["operations"] == 1
        connection = first.json()["connection_id"]
        assert pb.call("DELETE", f"/dashboards/connections/{connection}").status_code == 200
        assert pb.call("DELETE", f"/dashboards/connections/{connection}").status_code == 404
        assert pb.call("POST", "/dashboards/operations/connect").status_code == 201
        assert pb.call("POST", "/dashboards/nope/connect").status_code == 404
    runtime.archive.close()


def test_config_status_and_version(pulseboard):
    collector = pulseboard.call("GET", "/config/collector").json()
    assert collector["collectors"]["system"]["interval"] == 5 and collector["demo"] is False
    dashboards = pulseboard.call("GET", "/config/dashboards").json()
    assert dashboards["dashboards"]["refresh"] == 5 and dashboards["max_connections"] == 10
    status = pulseboard.call("GET", "/status").json()
    names = {c["name"] for c in status["collectors"]}
    assert {"system", "disk_usage", "self", "flush"} <= names
    assert status["connections"]["max"] == 10 and "series" in status["store"]
    assert pulseboard.call("GET", "/version").json()["version"]


def test_the_openapi_document_lists_every_endpoint(pulseboard):
    spec = pulseboard.call("GET", "/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    documented = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    served = set()
    for rule in pulseboard.flask.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        if path.startswith(PREFIX) and not path.endswith("{rest}") and "/ws/" not in path:
            served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented
    for method, path in [
        ("POST", "/metrics/custom/register"),
        ("POST", "/metrics/custom/record"),
        ("POST", "/metrics/query"),
        ("POST", "/dashboards/create"),
        ("DELETE", "/dashboards/connections/{connection_id}"),
    ]:
        assert (method, PREFIX + path) in documented


def test_ids_ending_in_a_newline_and_dashboards_past_the_panel_cap_are_refused_and_not_written(pulseboard):
    for bad in ({**SHOP, "id": "shop\n"}, {**SHOP, "panels": [{**SHOP["panels"][0], "id": "orders\n"}]}):
        answer = pulseboard.call("POST", "/dashboards/create", bad)
        assert answer.status_code == 400, answer.text
    panels = [
        {**SHOP["panels"][0], "id": f"p{i}", "grid": {"x": 0, "y": i * 4, "w": 12, "h": 4}}
        for i in range(MAX_PANELS + 1)
    ]
    answer = pulseboard.call("POST", "/dashboards/create", {**SHOP, "panels": panels})
    assert answer.status_code == 400 and str(MAX_PANELS) in answer.json()["error"]
    assert (
        pulseboard.call("POST", "/dashboards/create", {**SHOP, "panels": panels[:MAX_PANELS]}).status_code
        == 201
    )
    rule = {"id": "slow\n", "name": "Slow", "query": "up", "condition": "<", "threshold": 1}
    assert pulseboard.call("POST", "/alerts/rules", rule).status_code == 400
    assert all("\n" not in name for name in pulseboard.runtime.dashboard_store.dashboards)
