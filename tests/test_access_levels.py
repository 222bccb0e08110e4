"""The level matrix, walked from the declarations: every route and callback that can answer with metric
data is called by a user limited to the executive level, naming series of every other level, and no
answer holds one of them. A new data route or callback without an example here fails the walk."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
import requests
from websockets.sync.client import connect as live

from dashboard_app.access.secrets import Secrets
from dashboard_app.api.frame import PREFIX as API
from dashboard_app.runtime import Runtime
from tests.servers import quiet_settings, serving
from tsdb.metrics import MetricSpec, Sample

SECRETS = Secrets("s" * 48, "correct-horse-battery")
PASSWORD = "a-long-enough-password"
OWN = "pulseboard_business_sessions_total"  # executive
FOREIGN = {
    "pulseboard_system_cpu_usage_ratio": "operations",
    "pulseboard_http_requests_total": "development",
    "mystery_queue_depth": None,  # declared by nobody: admins only
}
SECRET_LABEL = "zz-foreign-host"  # a label value only the foreign series carry
SILENCE_OF: dict[str, str] = {}  # the id of the silence on each rule


@pytest.fixture(scope="module")
def pulseboard(tmp_path_factory):
    runtime = Runtime(
        quiet_settings(auth__enabled="true", auth__rate_limit="100000"),
        tmp_path_factory.mktemp("levels"),
        secrets=SECRETS,
    )
    runtime.users.set("exe", PASSWORD, "operator", ["executive"])
    now = time.time()
    runtime.store.declare(MetricSpec("mystery_queue_depth", "gauge", "none", "Nobody said whose."))
    for name in (OWN, *FOREIGN):
        host = "shop" if name == OWN else SECRET_LABEL
        runtime.store.append(Sample(name, (("host", host),), 0.5 + i, now - 600 + 10 * i) for i in range(60))
    for name in (OWN, *FOREIGN):
        rule = {"id": rule_id(name), "name": f"rule on {name}", "query": name}
        runtime.rules.put(_rule({**rule, "condition": ">", "threshold": -1, "for": 0}))
        silence = runtime.silences.add(rule_id(name), {}, now + 3600, "maintenance", "admin")
        SILENCE_OF[rule_id(name)] = silence.id
    runtime.alerts.evaluate()
    with serving(runtime) as running:
        yield running
    runtime.archive.close()


def _rule(body: dict):
    from dashboard_app.api.alerts import parse_rule_body

    return parse_rule_body(body)


def session(url: str, user: str) -> requests.Session:
    http = requests.Session()
    http.headers["Origin"] = url
    password = SECRETS.admin_password if user == "admin" else PASSWORD
    answer = http.post(url + "/login", data={"user": user, "password": password}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return http


def leaks(text: str, asked: str | None = None) -> list[str]:
    """The foreign series an answer holds: their label value, or a foreign name the request did not
    send (a refusal may quote the name it was sent)."""
    return [name for name in (*FOREIGN, SECRET_LABEL) if name in text and name != asked]


def body_text(response: requests.Response) -> str:
    if response.headers.get("Content-Type", "").startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            return "".join(archive.read(n).decode() for n in archive.namelist())
    return response.text


def rule_id(name: str) -> str:
    return name.replace("_", "-")[-40:].strip("-")


def route_examples(now: float) -> dict[tuple[str, str], list[dict]]:
    """Requests that name each foreign metric (``{m}``) or dashboard, by declared route."""
    q = API
    return {
        (f"{q}/metrics/latest", "GET"): [{"params": {"query": "{m}"}}, {}],
        (f"{q}/metrics/query", "POST"): [
            {"json": {"query": "{m}", "step": 60}},
            # the same body sent as another content type: the handler reads it, and still may not leak
            {"data": json.dumps({"query": "{m}", "step": 60}), "headers": {"Content-Type": "text/plain"}},
        ],
        (f"{q}/metrics/prometheus", "GET"): [{}],
        (f"{q}/metrics/custom/list", "GET"): [{}],
        (f"{q}/dashboards/<id>", "GET"): [{"path": {"id": "operations"}}, {"path": {"id": "development"}}],
        (f"{q}/dashboards/<id>/connect", "POST"): [{"path": {"id": "operations"}}],
        (f"{q}/explore/export.csv", "GET"): [
            {"params": {"query": "{m}", "start": now - 3600, "step": 60}},
            {
                "params": {
                    "query": 'sum by (__name__, host) ({__name__=~".+"})',
                    "start": now - 600,
                    "step": 60,
                }
            },
        ],
        (f"{q}/dashboards/<id>/download", "GET"): [{"path": {"id": "development"}}],
        (f"{q}/dashboards/<id>/versions", "GET"): [{"path": {"id": "development"}}],
        (f"{q}/dashboards/<id>/versions/<version>", "GET"): [{"path": {"id": "development", "version": "0"}}],
        (f"{q}/alerts/rules", "GET"): [{}],
        (f"{q}/alerts/rules", "POST"): [
            {"json": {"id": "mine", "name": "Mine", "query": "{m}", "condition": ">", "threshold": 1}}
        ],
        (f"{q}/alerts/rules/<id>", "PUT"): [
            {
                "path": {"id": "{rule}"},
                "json": {"id": "{rule}", "name": "X", "query": OWN, "condition": ">", "threshold": 1},
            }
        ],
        (f"{q}/alerts/rules/<id>", "DELETE"): [{"path": {"id": "{rule}"}}],
        (f"{q}/alerts/rules/export", "GET"): [{}],
        (f"{q}/alerts/rules/backtest", "POST"): [
            {"json": {"rule": {"id": "b", "name": "B", "query": "{m}", "condition": ">", "threshold": 0}}},
            {"json": {"rule_id": "{rule}"}},
        ],
        (f"{q}/alerts/active", "GET"): [{}],
        (f"{q}/alerts/silences", "GET"): [{}],
        (f"{q}/alerts/silences", "POST"): [{"json": {"rule_id": "{rule}", "for": "1h", "reason": "x"}}],
        (f"{q}/alerts/silences/<id>", "DELETE"): [{"path": {"id": "{silence}"}}],
        (f"{q}/alerts/history", "GET"): [{}],
        (f"{q}/analysis/performance", "GET"): [{}],
        (f"{q}/analysis/trends", "GET"): [{"params": {"query": "{m}", "start": now - 3600}}],
        (f"{q}/analysis/anomalies", "GET"): [{"params": {"query": "{m}", "start": now - 3600}}],
        (f"{q}/metrics/export.csv", "GET"): [{"params": {"query": "{m}", "start": now - 3600, "step": 60}}],
        (f"{q}/dashboards/<id>/panels/<panel_id>/export.csv", "GET"): [
            {"path": {"id": "operations", "panel_id": "cpu-total"}},
            {"path": {"id": "executive", "panel_id": "revenue"}},
        ],
        (f"{q}/dashboards/<id>/export.zip", "GET"): [
            {"path": {"id": "operations"}},
            {"path": {"id": "executive"}},
        ],
        ("/metrics", "GET"): [{}],
        ("/api/v1/query", "GET"): [{"params": {"query": "{m}"}}, {"params": {"query": '{__name__=~".+"}'}}],
        ("/api/v1/query", "POST"): [{"data": {"query": 'sum by (__name__) ({__name__=~".+"})'}}],
        ("/api/v1/query_range", "GET"): [
            {"params": {"query": "{m}", "start": now - 600, "end": now, "step": 60}},
            {"params": {"query": '{__name__=~".+"}', "start": now - 600, "end": now, "step": 60}},
        ],
        ("/api/v1/query_range", "POST"): [
            {"data": {"query": "rate({m}[5m])", "start": now - 600, "end": now, "step": 60}}
        ],
        ("/api/v1/series", "GET"): [
            {"params": {"match[]": "{m}"}},
            {"params": {"match[]": '{__name__=~".+"}'}},
        ],
        ("/api/v1/series", "POST"): [{"data": {"match[]": '{__name__=~".+"}'}}],
        ("/api/v1/labels", "GET"): [{}, {"params": {"match[]": '{__name__=~".+"}'}}],
        ("/api/v1/labels", "POST"): [{}],
        ("/api/v1/label/<name>/values", "GET"): [{"path": {"name": "__name__"}}, {"path": {"name": "host"}}],
        ("/api/v1/label/<name>/values", "POST"): [{"path": {"name": "__name__"}}],
        ("/api/v1/metadata", "GET"): [{}, {"params": {"metric": "{m}"}}],
        ("/api/v1/metadata", "POST"): [{}],
        ("/api/v1/query_exemplars", "GET"): [{"params": {"query": "{m}", "start": now - 600, "end": now}}],
        ("/api/v1/query_exemplars", "POST"): [{"data": {"query": "{m}", "start": now - 600, "end": now}}],
        ("/api/v1/rules", "GET"): [{}, {"params": {"type": "alert"}}],
        ("/api/v1/rules", "POST"): [{}],
        ("/api/v1/alerts", "GET"): [{}],
        ("/api/v1/alerts", "POST"): [{}],
        (f"{q}/ws/dashboard/<dashboard_id>", "GET"): [],  # the live channel: its own test below
    }


def expand(template, metric: str):
    text = json.dumps(template).replace("{m}", metric).replace("{rule}", rule_id(metric))
    text = text.replace("{silence}", SILENCE_OF.get(rule_id(metric), "none"))
    return json.loads(text)


def test_no_data_route_answers_a_user_with_series_of_another_level(pulseboard):
    permissions = pulseboard.flask.extensions["pulseboard_permissions"]
    declared = {key for key, p in permissions.routes.items() if p.reads_series or p.dashboard == "path"}
    declared = {key for key in declared if key[1] != "HEAD"}
    examples = route_examples(time.time())
    assert declared - set(examples) == set(), "a data route without an example in this walk"
    exe = session(pulseboard.url, "exe")
    found, answered = [], 0
    for (rule, method), templates in examples.items():
        for template in templates:
            for metric in FOREIGN:
                request = expand(template, metric)
                path = rule
                for key, value in request.pop("path", {}).items():
                    path = path.replace(f"<{key}>", value)
                response = exe.request(method, pulseboard.url + path, timeout=30, **request)
                answered += 1
                assert response.status_code < 500, f"{method} {path}: {response.status_code}"
                leaked = leaks(body_text(response), metric)
                if leaked:
                    found.append(f"{method} {path} {request}: {leaked}")
    assert answered > 50
    assert found == []
    # The foreign rules are all still there: nothing was changed or deleted through the walk.
    assert {rule_id(m) for m in FOREIGN} <= set(pulseboard.runtime.rules.rules)


def test_the_same_routes_answer_the_users_own_level(pulseboard):
    """The walk above could not pass by refusing everything: the executive's own series come back."""
    exe = session(pulseboard.url, "exe")
    url = pulseboard.url + API
    latest = exe.get(url + "/metrics/latest", timeout=10).json()
    assert [s["name"] for s in latest["series"]] == [OWN]
    query = exe.post(url + "/metrics/query", json={"query": OWN, "step": 60}, timeout=10).json()
    assert query["series"] and query["series"][0]["name"] == OWN
    exposition = exe.get(url + "/metrics/prometheus", timeout=10).text
    assert "pulseboard_business_sessions_total" in exposition and not leaks(exposition)
    active = exe.get(url + "/alerts/active", timeout=10).json()["alerts"]
    assert [a["metric"] for a in active] == [OWN]
    admin = session(pulseboard.url, "admin")
    everything = admin.get(url + "/metrics/latest", timeout=10).text
    assert set(leaks(everything)) == {*FOREIGN, SECRET_LABEL}  # an admin reads every level, and none


def callback_examples() -> dict[str, list[dict]]:
    """Callback requests, by a fragment of the output key they name, that reach for foreign data."""
    graph = {"type": "panel-graph", "dashboard": "operations", "panel": "cpu-total"}
    variable = {"type": "dashboard-variable", "dashboard": "operations", "name": "instance"}
    box = {"type": "dashboard-variable-box", "dashboard": "operations", "name": "instance"}
    tick = {"id": "app-interval", "property": "n_intervals", "value": 1}
    path = {"id": "app-url", "property": "pathname", "value": "/executive"}
    return {
        "panel-graph": [
            {
                "outputs": [
                    [{"id": graph, "property": "figure"}],
                    [{"id": {"type": "panel-render-state", "dashboard": "operations"}, "property": "data"}],
                    {"id": "nav-last-update", "property": "children"},
                ],
                "inputs": [
                    tick,
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
            }
        ],
        "dashboard-variable": [
            {
                "outputs": [[{"id": variable, "property": "options"}], [{"id": box, "property": "style"}]],
                "inputs": [[{"id": variable, "property": "id", "value": variable}]],
                "state": [[{"id": variable, "property": "value", "value": None}]],
            }
        ],
        "panel-csv": [
            {
                "outputs": [[{"id": {**graph, "type": "panel-csv"}, "property": "href"}], []],
                "inputs": [
                    {"id": "nav-time-range", "property": "value", "value": "15m"},
                    {"id": "nav-custom-start", "property": "value", "value": None},
                    {"id": "nav-custom-end", "property": "value", "value": None},
                    {"id": "app-url", "property": "pathname", "value": "/operations"},
                    [],
                ],
            }
        ],
        "app-alert-banner": [
            {"outputs": {"id": "app-alert-banner", "property": "children"}, "inputs": [tick, path]}
        ],
        "alerts-body": [
            {
                "outputs": {"id": "alerts-body", "property": "children"},
                "inputs": [tick, path, {"id": "silence-changed", "property": "data", "value": 0}],
            }
        ],
        "silence-rule": [{"outputs": {"id": "silence-rule", "property": "options"}, "inputs": [path]}],
        "silence-message": [
            {
                "outputs": [
                    {"id": "silence-message", "property": "children"},
                    {"id": "silence-changed", "property": "data"},
                ],
                "inputs": [
                    {"id": "silence-create", "property": "n_clicks", "value": 1},
                    [
                        {
                            "id": {"type": "silence-end", "silence": "{silence}"},
                            "property": "n_clicks",
                            "value": 1,
                        }
                    ],
                ],
                "state": [
                    {"id": "silence-rule", "property": "value", "value": "{rule}"},
                    {"id": "silence-labels", "property": "value", "value": ""},
                    {"id": "silence-for", "property": "value", "value": "1h"},
                    {"id": "silence-reason", "property": "value", "value": "x"},
                    {"id": "silence-changed", "property": "data", "value": 0},
                ],
            }
        ],
        "trends-series": [
            {
                "outputs": {"id": "trends-series", "property": "options"},
                "inputs": [{"id": "app-url", "property": "pathname", "value": "/trends"}],
            }
        ],
        "trends-graph": [
            {
                "outputs": [
                    {"id": "trends-graph", "property": "figure"},
                    {"id": "trends-csv", "property": "href"},
                    {"id": "trends-note", "property": "children"},
                ],
                "inputs": [
                    {"id": "trends-series", "property": "value", "value": ["{m}"]},
                    {"id": "trends-resolution", "property": "value", "value": "60"},
                    {"id": "trends-aggregation", "property": "value", "value": "avg"},
                    {"id": "trends-overlays", "property": "value", "value": []},
                    {"id": "nav-time-range", "property": "value", "value": "1h"},
                    {"id": "nav-custom-start", "property": "value", "value": None},
                    {"id": "nav-custom-end", "property": "value", "value": None},
                    {"id": "app-theme", "property": "data", "value": "light"},
                ],
            }
        ],
        "explore-suggestions": [
            {
                "outputs": [
                    {"id": "explore-suggestions", "property": "children"},
                    {"id": "explore-suggested", "property": "data"},
                    {"id": "explore-error", "property": "children"},
                ],
                "inputs": [{"id": "explore-query", "property": "value", "value": text}],
            }
            for text in ("pulseboard_", "mystery", "{m}{", '{m}{host="', "sum by (")
        ],
        "explore-graph": [
            {
                "outputs": [
                    {"id": "explore-graph", "property": "figure"},
                    {"id": "explore-table", "property": "children"},
                    {"id": "explore-drawn", "property": "data"},
                    {"id": "explore-note", "property": "children"},
                    {"id": "explore-add", "property": "href"},
                    {"id": "explore-csv", "property": "href"},
                ],
                "inputs": [
                    {"id": "explore-query", "property": "value", "value": text},
                    {"id": "explore-run", "property": "n_clicks", "value": 1},
                    {"id": "nav-time-range", "property": "value", "value": "1h"},
                    {"id": "nav-custom-start", "property": "value", "value": None},
                    {"id": "nav-custom-end", "property": "value", "value": None},
                    {"id": "app-theme", "property": "data", "value": "light"},
                ],
            }
            for text in ("{m}", 'sum by (__name__, host) ({__name__=~".+"})')
        ],
        "edit-preview": [
            {
                "outputs": {"id": "edit-preview", "property": "figure"},
                "inputs": [
                    {
                        "id": "edit-draft",
                        "property": "data",
                        "value": {
                            "selected": "p",
                            "dashboard": {
                                "id": "x",
                                "title": "X",
                                "access": "executive",
                                "panels": [
                                    {"id": "p", "title": "P", "type": "table", "queries": [{"expr": text}]}
                                ],
                            },
                        },
                    },
                    {"id": "nav-time-range", "property": "value", "value": "1h"},
                    {"id": "nav-custom-start", "property": "value", "value": None},
                    {"id": "nav-custom-end", "property": "value", "value": None},
                    {"id": "app-theme", "property": "data", "value": "light"},
                ],
            }
            for text in ("{m}", '{__name__=~".+"}')
        ],
        "_pages_content": [
            {
                "outputs": [
                    {"id": "_pages_content", "property": "children"},
                    {"id": "_pages_store", "property": "data"},
                ],
                "inputs": [
                    {"id": "_pages_location", "property": "pathname", "value": "/operations"},
                    {"id": "_pages_location", "property": "search", "value": ""},
                ],
            }
        ],
    }


def test_no_data_callback_answers_a_user_with_series_of_another_level(pulseboard):
    permissions = pulseboard.flask.extensions["pulseboard_permissions"]
    examples = callback_examples()
    exe = session(pulseboard.url, "exe")
    exe.get(pulseboard.url + "/executive", timeout=10)
    declared = [key for key, p in permissions.callbacks.items() if p.reads_series or p.dashboard]
    covered = {key: next((f for f in examples if f in key), None) for key in declared}
    assert [k for k, f in covered.items() if f is None] == [], "a data callback without an example"
    found, answered = [], 0
    for key, fragment in covered.items():
        for template in examples[fragment]:
            for metric in FOREIGN:
                body = {"output": key, "changedPropIds": [], **expand(template, metric)}
                response = exe.post(pulseboard.url + "/_dash-update-component", json=body, timeout=30)
                answered += 1
                assert response.status_code < 500, f"{fragment}: {response.status_code} {response.text[:200]}"
                leaked = leaks(response.text, metric)
                if leaked:
                    found.append(f"{fragment} ({metric}): {leaked}")
    assert answered >= 3 * len(covered)
    assert found == []


def test_the_live_channel_streams_only_the_users_levels(pulseboard):
    exe = session(pulseboard.url, "exe")
    cookie = "; ".join(f"{c.name}={c.value}" for c in exe.cookies)
    ws_url = pulseboard.url.replace("http", "ws") + API + "/ws/dashboard/"
    headers = {"Cookie": cookie}
    with pytest.raises(Exception):  # noqa: B017 - a refused upgrade surfaces as the client's error
        live(ws_url + "operations", additional_headers=headers).recv(timeout=5)
    channel = live(ws_url + "executive", additional_headers=headers)
    try:
        frames = [channel.recv(timeout=10) for _ in range(2)]
    finally:
        channel.close()
    assert json.loads(frames[0])["type"] == "hello" and json.loads(frames[1])["type"] == "update"
    assert not leaks("".join(frames))


def test_every_shipped_panel_reads_metrics_of_its_dashboards_level(tmp_path):
    """A viewer given a dashboard's level sees every panel of it drawn, none refused."""
    from tsdb.selector import parse_selector

    runtime = Runtime(quiet_settings(), tmp_path)
    wrong = []
    for dashboard in runtime.dashboards.values():
        for panel in dashboard.panels:
            for query in panel.queries:
                assert query.compiled.metrics, f"{dashboard.id}/{panel.id} reads no metric"
                for name in query.compiled.metrics:
                    if runtime.levels(name) != dashboard.access:
                        wrong.append(f"{dashboard.id}/{panel.id}: {name} is {runtime.levels(name)}")
            for variable in dashboard.variables:
                name = parse_selector(variable.values_from).name
                if runtime.levels(name) != dashboard.access:
                    wrong.append(f"{dashboard.id} variable {variable.name}: {name}")
    assert wrong == []
    runtime.archive.close()
