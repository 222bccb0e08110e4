"""Dashboards as documents over real HTTP: versions, restore, conflicts, clone, download and upload, import
errors; and dashboard variables put into PromQL."""

from __future__ import annotations

import json

import pytest
import yaml

from dashboard_app.dashboard_store import DashboardStore
from dashboard_app.pages.panels import narrow_panel
from layouts.schema import Dashboard, Panel, Variable
from query.promql.variables import references, stand_in, substitute
from tests.servers import quiet_settings, serving
from tsdb.metrics import Sample

SHOP = {
    "id": "shop",
    "title": "Shop",
    "access": "operations",
    "panels": [
        {"id": "orders", "title": "Orders", "type": "line", "queries": [{"expr": "shop_orders_total"}]}
    ],
}


def test_every_save_is_a_version_that_can_be_read_and_restored(pulseboard):
    assert pulseboard.call("POST", "/dashboards/create", SHOP).json()["version"] == 1
    renamed = pulseboard.call("PUT", "/dashboards/shop?version=1", {**SHOP, "title": "Our shop"})
    assert renamed.status_code == 200 and renamed.json()["version"] == 2
    listed = pulseboard.call("GET", "/dashboards/shop/versions").json()
    assert [v["version"] for v in listed["versions"]] == [2, 1] and listed["version"] == 2
    assert listed["versions"][0]["by"] == "anonymous" and listed["versions"][0]["title"] == "Our shop"
    first = pulseboard.call("GET", "/dashboards/shop/versions/1").json()
    assert first["dashboard"]["title"] == "Shop"
    restored = pulseboard.call("POST", "/dashboards/shop/versions/1/restore")
    assert (
        restored.status_code == 200 and restored.json()["version"] == 3 and restored.json()["title"] == "Shop"
    )
    missing = pulseboard.call("GET", "/dashboards/shop/versions/9")
    assert missing.status_code == 404 and "kept: 3, 2, 1" in missing.json()["error"]
    # The versions are in the state database: another replica (or a restart) reads the same.
    other = DashboardStore(pulseboard.runtime.database, pulseboard.runtime.dashboard_store.shipped)
    assert [v["version"] for v in other.versions("shop")] == [3, 2, 1]
    assert other.at_version("shop", 2).title == "Our shop"


def test_a_save_made_from_an_older_version_is_refused_and_says_who_saved_since(pulseboard):
    pulseboard.call("POST", "/dashboards/create", SHOP)
    mine = pulseboard.call("PUT", "/dashboards/shop", {**SHOP, "title": "Mine"}, headers={"If-Match": '"1"'})
    assert mine.status_code == 200
    theirs = pulseboard.call(
        "PUT", "/dashboards/shop", {**SHOP, "title": "Theirs"}, headers={"If-Match": '"1"'}
    )
    assert theirs.status_code == 409 and theirs.json()["field"] == "version"
    assert "changed by anonymous since you opened it (version 2, yours is 1)" in theirs.json()["error"]
    assert pulseboard.call("GET", "/dashboards/shop").json()["title"] == "Mine"  # nothing overwritten
    bad = pulseboard.call("PUT", "/dashboards/shop?version=two", SHOP)
    assert bad.status_code == 400 and bad.json()["field"] == "version"


def test_a_dashboard_downloads_as_yaml_or_json_and_uploads_back(pulseboard):
    pulseboard.call("POST", "/dashboards/create", SHOP)
    as_yaml = pulseboard.call("GET", "/dashboards/shop/download")
    assert as_yaml.headers["Content-Disposition"] == 'attachment; filename="shop.yaml"'
    assert yaml.safe_load(as_yaml.text) == SHOP  # the file's own shape: defaults left out
    as_json = pulseboard.call("GET", "/dashboards/shop/download?format=json")
    assert json.loads(as_json.text) == SHOP
    # A YAML file uploads as it is, as a new dashboard or as the next version of one.
    text = as_yaml.text.replace("id: shop", "id: shop-two", 1)
    created = pulseboard.call(
        "POST", "/dashboards/create", raw=text.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201 and created.json()["id"] == "shop-two"
    broken = pulseboard.call(
        "POST", "/dashboards/create", raw=b"id: x\n  title: [", headers={"Content-Type": "application/yaml"}
    )
    assert broken.status_code == 400 and "line 2" in broken.json()["error"]
    assert pulseboard.call("GET", "/dashboards/shop/download?format=xml").status_code == 400


def test_clone_copies_under_a_new_id_and_the_shipped_ones_stay_for_non_admins(pulseboard):
    clone = pulseboard.call("POST", "/dashboards/operations/clone", {"title": "My operations"})
    assert clone.status_code == 201
    body = clone.json()
    assert body["id"] == "operations-copy" and body["title"] == "My operations" and not body["shipped"]
    assert body["panels"] == pulseboard.call("GET", "/dashboards/operations").json()["panels"]
    again = pulseboard.call("POST", "/dashboards/operations/clone")
    assert again.json()["id"] == "operations-copy-2"


def test_import_refuses_what_is_not_a_grafana_dashboard_and_names_what_it_made(pulseboard):
    assert pulseboard.call("POST", "/dashboards/import", [1, 2]).status_code == 400
    empty = pulseboard.call("POST", "/dashboards/import", {"title": "x", "panels": []})
    assert empty.status_code == 400 and "no panels" in empty.json()["error"]
    board = {
        "title": "Host",
        "panels": [
            {
                "type": "stat",
                "title": "Up",
                "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
                "targets": [{"expr": "up"}],
            }
        ],
    }
    wrapped = pulseboard.call(
        "POST", "/dashboards/import?access=development", {"dashboard": board, "meta": {}}
    )
    assert (
        wrapped.status_code == 201
        and wrapped.json()["id"] == "host"
        and wrapped.json()["access"] == "development"
    )
    second = pulseboard.call("POST", "/dashboards/import", board)
    assert second.json()["id"] == "host-2"  # never over an existing one
    named = pulseboard.call("POST", "/dashboards/import?id=taken&title=Named", board)
    assert named.json()["id"] == "taken" and named.json()["title"] == "Named"
    assert pulseboard.call("POST", "/dashboards/import?id=taken", board).status_code == 409
    assert pulseboard.call("POST", "/dashboards/import?access=secret", board).status_code == 400


def test_variables_are_put_into_promql_where_queries_name_them():
    text = 'rate(x{instance="$node",job=~"${job}",env="[[env]]"}[$__rate_interval]) offset $off'
    assert references(text) == ["node", "job", "env", "off"]
    assert stand_in(text) == 'rate(x{instance="v",job=~"v",env="v"}[$__rate_interval]) offset 5m'
    values = {"node": 'a"b', "job": None, "env": "prod", "off": "1h"}
    assert substitute(text, values) == (
        'rate(x{instance="a\\"b",job=~".*",env="prod"}[$__rate_interval]) offset 1h'
    )
    assert substitute('up{instance="$node"}', {"node": None}) == 'up{instance=~".*"}'  # "All" matches any
    assert substitute("topk($n, up)", {"n": "3"}) == "topk(3, up)"


def test_a_panel_gets_its_variables_and_only_unnamed_label_variables_narrow():
    dashboard = Dashboard.model_validate(
        {
            "id": "d",
            "title": "D",
            "access": "operations",
            "variables": [
                {"name": "instance"},
                {"name": "node", "label": "instance", "narrow": False},
                {"name": "window", "kind": "interval", "values": ["5m", "1h"]},
            ],
            "panels": [
                {"id": "a", "title": "A", "type": "line", "queries": [{"expr": "rate(x[$window])"}]},
                {"id": "b", "title": "B", "type": "line", "queries": [{"expr": 'y{instance="$node"}'}]},
            ],
        }
    )
    a, b = dashboard.panels
    chosen = {"instance": "h1", "node": "h2"}
    assert narrow_panel(a, chosen, dashboard.variables).queries[0].expr == 'rate(x{instance="h1"}[300s])'
    assert narrow_panel(b, chosen, dashboard.variables).queries[0].expr == 'y{instance="h2"}'
    assert narrow_panel(a, {"window": "1h"}, dashboard.variables).queries[0].expr == "rate(x[1h])"
    # Nothing named and nothing chosen: the very same panel, so its shared answers are found again.
    plain = Panel(id="c", title="C", type="line", queries=[{"expr": "z"}])
    assert narrow_panel(plain, {}, dashboard.variables) is plain
    with pytest.raises(ValueError, match="lists its choices"):
        Variable(name="w", kind="custom")
    regex = Variable(name="port", label="instance", regex="[^:]+:(.*)")
    assert regex.offered(["a:9100", "b:9100", "c:8080"]) == ["8080", "9100"]


def test_a_grafana_variable_chosen_on_the_page_narrows_what_its_panels_draw(pulseboard):
    store = pulseboard.runtime.store
    store.append([Sample("node_load1", (("instance", "h1:9100"), ("job", "node")), 1.0, store.clock() - 5)])
    store.append([Sample("node_load1", (("instance", "h2:9100"), ("job", "node")), 2.0, store.clock() - 5)])
    board = {
        "title": "Load",
        "templating": {
            "list": [{"name": "node", "type": "query", "query": "label_values(node_load1, instance)"}]
        },
        "panels": [
            {
                "type": "timeseries",
                "title": "Load",
                "gridPos": {"x": 0, "y": 0, "w": 24, "h": 8},
                "targets": [{"expr": 'node_load1{instance="$node"}', "legendFormat": "{{instance}}"}],
            }
        ],
    }
    made = pulseboard.call("POST", "/dashboards/import", board).json()
    every = pulseboard.call("GET", f"/dashboards/{made['id']}/panels/load/export.csv?range=5m").text
    assert every.splitlines()[0] == "time,h1:9100 [none],h2:9100 [none]"
    one = pulseboard.call(
        "GET", f"/dashboards/{made['id']}/panels/load/export.csv?range=5m&node=h2:9100"
    ).text
    assert one.splitlines()[0] == "time,h2:9100 [none]"


@pytest.fixture
def pulseboard(tmp_path):
    from dashboard_app.runtime import Runtime

    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as pb:
        yield pb
    runtime.archive.close()


def test_a_yaml_body_whose_aliases_would_explode_is_refused_before_it_is_expanded(pulseboard):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)
    )
    answer = pulseboard.call(
        "POST", "/dashboards/create", raw=bomb.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert answer.status_code == 400 and "aliases expand to more than" in answer.json()["error"]
    assert pulseboard.call("GET", "/dashboards/list").json()["dashboards"][-1]["id"] == "development"
