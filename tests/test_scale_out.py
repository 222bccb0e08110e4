"""Scaled out: agents on hosts, a real Prometheus scraping them, Pulseboard reading through Prometheus."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests

from dashboard_app.access.secrets import Secrets
from dashboard_app.pages.panels import Window, panel_frame
from dashboard_app.runtime import Runtime
from dashboard_app.server import create_app
from layouts import ids
from layouts.schema import Panel, PanelQuery
from tests.servers import (
    free_port,
    logged_in,
    prometheus_query,
    prometheus_server,
    quiet_settings,
    serving,
    start_agent,
    start_replica,
    stop,
    wait_http,
)
from tsdb.aggregator import AGGREGATIONS

CPU = "pulseboard_system_cpu_usage_ratio"
SECRETS = Secrets("s" * 48, "correct-horse-battery")
PASSWORD = "a-long-enough-password"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """Two agents (host-a, host-b) scraped every second by the real Prometheus; yields its URL."""
    tmp = tmp_path_factory.mktemp("scale-out")
    ports = {"host-a": free_port(), "host-b": free_port()}
    # Different intervals make the two agents' CPU shares differ even on this one machine.
    agents = [start_agent(ports["host-a"]), start_agent(ports["host-b"], PULSEBOARD_SYSTEM_INTERVAL="2")]
    try:
        for proc, port in zip(agents, ports.values()):
            wait_http(f"http://127.0.0.1:{port}/metrics", proc)
        targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        with prometheus_server(tmp, targets, flags=("--web.enable-remote-write-receiver",)) as url:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(prometheus_query(url, CPU)) < 2:
                time.sleep(0.5)
            assert len(prometheus_query(url, CPU)) == 2, "Prometheus did not scrape both agents in 60 s"
            time.sleep(8)  # a few scrapes each, so every panel has points
            yield url
    finally:
        for proc in agents:
            stop(proc)


def reading_from(prometheus: str, **overrides: str):
    return quiet_settings(
        source="prometheus", prometheus__url=prometheus, prometheus__scrape_interval="1", **overrides
    )


def cpu_points(dash_duo) -> list[tuple[str, float]]:
    """The CPU usage panel's points as the browser drew them: (epoch milliseconds, value)."""
    return dash_duo.driver.execute_script(
        "var el = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "if (!el || !el.data || !el.data.length) return [];"
        "var t = el.data[0]; return Array.from(t.x).map(function (x, i) { return [String(x), t.y[i]]; });",
        f"#{ids.panel_dom_id('operations', 'cpu-total')}",
    )


def prometheus_value(url: str, instance: str, point: str, step: float) -> float | None:
    """What Prometheus itself says a point of the CPU panel is for one instance: the panel's PromQL,
    avg_over_time of the step before the point, evaluated at the point's time."""
    at = float(point) / 1000  # the page sends times as epoch milliseconds
    expr = f'avg_over_time({CPU}{{instance="{instance}"}}[{round(step * 1000)}ms])'
    result = prometheus_query(url, expr, at=at)
    return float(result[0]["value"][1]) if result else None  # None: that instance has no sample there


def test_switching_the_host_selector_shows_that_agents_cpu(prometheus, dash_duo, tmp_path):
    runtime = Runtime(reading_from(prometheus, dashboards__refresh="1"), tmp_path)
    app = create_app(runtime)
    runtime.start()
    try:
        dash_duo.start_server(app, host="127.0.0.1")
        dash_duo.wait_for_page(dash_duo.server_url + "/operations?instance=host-a")
        selector = f"#{ids.panel_dom_id('operations', 'cpu-total')} .main-svg"
        dash_duo.wait_for_element(selector, timeout=20)
        step = 900 / runtime.settings.dashboards.points

        # The selector lists both agents' hosts, read from Prometheus' label values.
        dash_duo.find_element(".variable-select").click()
        options = [o.text for o in dash_duo.find_elements(".dash-options-list-option")]
        assert {"All", "host-a", "host-b"} <= set(options), options

        def matches(instance):
            points = cpu_points(dash_duo)
            if len(points) < 4:
                return False
            # Compare complete buckets (not the newest, still filling) with Prometheus' own answer.
            expected = [prometheus_value(prometheus, instance, t, step) for t, _ in points[-4:-1]]
            return all(  # drawn in percent
                e is not None and abs(e - y / 100) < 1e-6 for e, (_, y) in zip(expected, points[-4:-1])
            )

        deadline = time.monotonic() + 20
        while not matches("host-a") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert matches("host-a"), "the CPU panel does not show host-a's values"
        host_a = cpu_points(dash_duo)

        chosen = next(o for o in dash_duo.find_elements(".dash-options-list-option") if o.text == "host-b")
        chosen.click()
        deadline = time.monotonic() + 20
        while not matches("host-b") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert matches("host-b"), "after switching, the CPU panel does not show host-b's values"
        host_b = cpu_points(dash_duo)
        shared = {t for t, _ in host_a[:-1]} & {t for t, _ in host_b[:-1]}
        assert (
            shared
            and dict(host_a)[min(shared)] != dict(host_b)[min(shared)]
            or any(dict(host_a)[t] != dict(host_b)[t] for t in shared)
        ), "both hosts drew the same values"
        # The choice is in the address, so a copied link opens the same view.
        assert dash_duo.driver.current_url.endswith("/operations?instance=host-b")
        assert dash_duo.get_logs() == []
    finally:
        runtime.stop()


def test_queries_exports_and_alerts_read_through_prometheus(prometheus, tmp_path):
    runtime = Runtime(reading_from(prometheus), tmp_path)
    with serving(runtime) as pb:
        now = time.time()
        body = {"query": f'{CPU}{{instance="host-b"}}', "start": now - 60, "end": now, "step": 5}
        for agg in AGGREGATIONS:  # every aggregation is valid PromQL to the real server
            answer = pb.call("POST", "/metrics/query", {**body, "aggregation": agg})
            assert answer.status_code == 200, (agg, answer.text)
            [series] = answer.json()["series"]
            assert series["labels"] == {"instance": "host-b", "job": "node"} and series["points"], agg
        rate = pb.call(
            "POST",
            "/metrics/query",
            {**body, "query": "pulseboard_collector_failures_total", "aggregation": "rate"},
        )
        assert rate.status_code == 200, rate.text
        per_host = [s["labels"]["instance"] for s in rate.json()["series"] if s["points"]]
        assert per_host.count("host-a") == per_host.count("host-b") >= 2  # each collector of each host
        # A push is checked, then forwarded to Prometheus: a counter's increments add up there.
        body = {"name": "shop_checkouts_total", "type": "counter", "labels": ["shop"]}
        assert pb.call("POST", "/metrics/custom/register", body).status_code == 201
        for increment in (2, 3):
            sample = {"name": "shop_checkouts_total", "labels": {"shop": "eu"}, "value": increment}
            assert pb.call("POST", "/metrics/custom/record", {"samples": [sample]}).json()["stored"] == 1
        [found] = prometheus_query(prometheus, 'shop_checkouts_total{shop="eu"}')
        assert found["value"][1] == "5"
        wrong = pb.call("POST", "/metrics/custom/record", {"samples": [{**sample, "value": -1}]})
        assert wrong.status_code == 400 and "negative" in wrong.json()["error"]
        # A panel's CSV follows the host chosen on the page.
        csv = pb.call("GET", "/dashboards/operations/panels/cpu-total/export.csv?range=5m&instance=host-a")
        assert csv.status_code == 200 and len(csv.text.splitlines()) > 3
        both = pb.call("GET", "/dashboards/operations/panels/cpu-total/export.csv?range=5m")
        assert csv.text.splitlines()[0].count(",") == 1 and both.text.splitlines()[0].count(",") == 2
        # Shipped alert rules evaluate against Prometheus, and none of them errors.
        runtime.alerts.evaluate()
        rules = pb.call("GET", "/alerts/rules").json()["rules"]
        failing = {r["id"]: r["status"]["error"] for r in rules if r["status"]["error"]}
        assert not failing, failing


def test_prometheus_down_is_named_not_hidden(tmp_path):
    runtime = Runtime(reading_from(f"http://127.0.0.1:{free_port()}"), tmp_path)
    with serving(runtime) as pb:
        now = time.time()
        answer = pb.call("POST", "/metrics/query", {"query": CPU, "start": now - 60, "end": now, "step": 5})
        assert answer.status_code == 502 and "cannot be reached" in answer.json()["error"]
        page = requests.get(pb.url + "/operations", timeout=10)
        assert page.status_code == 200  # the page itself still loads; its panels say why they are empty


def test_two_gunicorn_replicas_serve_the_same_dashboards_and_one_session(prometheus, tmp_path):
    ports = [free_port(), free_port()]
    # Each replica has its own data directory: they share nothing but the secrets and Prometheus.
    replicas = [start_replica(p, tmp_path / f"replica-{i}", prometheus) for i, p in enumerate(ports)]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for proc, url in zip(replicas, urls):
            wait_http(url + "/login", proc, timeout=60)
        browser = requests.Session()
        login = browser.post(
            urls[0] + "/login",
            data={"user": "admin", "password": "correct-horse-battery", "next": "/operations"},
            headers={"Origin": urls[0]},
            allow_redirects=False,
        )
        assert login.status_code == 302, login.text
        # The cookie the first replica set opens pages and API answers on the second.
        page = browser.get(urls[1] + "/operations", allow_redirects=False)
        assert page.status_code == 200, page.status_code
        assert requests.get(urls[1] + "/operations", allow_redirects=False).status_code in (302, 401)
        boards = [browser.get(u + "/api/v1/monitoring/dashboards/list").json()["dashboards"] for u in urls]
        assert [d["id"] for d in boards[0]] == [d["id"] for d in boards[1]] and boards[0]
        now = time.time()
        body = {"query": f'{CPU}{{instance="host-a"}}', "start": now - 30, "end": now - 10, "step": 5}
        answers = [
            browser.post(u + "/api/v1/monitoring/metrics/query", json=body, headers={"Origin": u}).json()
            for u in urls
        ]
        assert answers[0]["series"] and answers[0]["series"] == answers[1]["series"]  # one source of truth
        logout = browser.post(urls[1] + "/logout", headers={"Origin": urls[1]}, allow_redirects=False)
        assert logout.status_code == 302
        assert browser.get(urls[0] + "/operations", allow_redirects=False).status_code in (302, 401)
    finally:
        for proc in replicas:
            stop(proc)


def test_the_query_api_passes_promql_to_the_server_within_the_callers_levels(prometheus, tmp_path):
    runtime = Runtime(reading_from(prometheus, auth__enabled="true"), tmp_path, secrets=SECRETS)
    runtime.users.set("exe", PASSWORD, "operator", ["executive"])
    with serving(runtime) as pb:
        admin = logged_in(pb.url, "admin", SECRETS.admin_password)
        exe = logged_in(pb.url, "exe", PASSWORD)
        at = time.time() - 2
        query = f"avg by (instance) ({CPU}) * 100 > bool 0"
        for path, params in (
            ("/api/v1/query", {"query": query, "time": at}),
            ("/api/v1/query_range", {"query": query, "start": at - 60, "end": at, "step": 5}),
            ("/api/v1/query", {"query": "label_replace(up, 'host', '$1', 'instance', '(.*)')", "time": at}),
        ):
            mine = admin.post(pb.url + path, data=params, timeout=10)
            theirs = requests.post(prometheus + path, data=params, timeout=10)
            assert mine.status_code == 200, mine.text
            assert mine.json() == theirs.json()  # the server's own answer, the text passed unchanged
        refused = exe.get(pb.url + "/api/v1/query", params={"query": f"sum({CPU})"}, timeout=10)
        assert refused.status_code == 403 and CPU in refused.json()["error"]
        unnamed = exe.get(
            pb.url + "/api/v1/query", params={"query": '{__name__=~"pulseboard_.+"}'}, timeout=10
        )
        assert unnamed.status_code == 403 and "metric name" in unnamed.json()["error"]
        names = exe.get(pb.url + "/api/v1/label/__name__/values", timeout=10).json()["data"]
        assert (
            CPU not in names
            and CPU in admin.get(pb.url + "/api/v1/label/__name__/values", timeout=10).json()["data"]
        )
        bad = admin.get(pb.url + "/api/v1/query", params={"query": "rate(x[5m]"}, timeout=10)
        assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"


@pytest.fixture(scope="module")
def victoria(tmp_path_factory):
    """Debian's VictoriaMetrics (it keeps no metric metadata) scraping an agent and a Prometheus server
    (whose own metrics hold real histograms and summaries) every second."""
    binary = shutil.which("victoria-metrics")
    assert binary, "victoria-metrics is installed by `make test` (Debian package victoria-metrics)"
    tmp = tmp_path_factory.mktemp("victoria")
    agent_port, port = free_port(), free_port()
    agent = start_agent(agent_port)
    server = None
    try:
        with prometheus_server(tmp, {}) as prom:
            targets = {"vm-host": f"127.0.0.1:{agent_port}", "prometheus": prom.removeprefix("http://")}
            static = ", ".join(f"{{targets: ['{a}'], labels: {{instance: {n}}}}}" for n, a in targets.items())
            job = f"  - job_name: node\n    static_configs: [{static}]\n"
            (tmp / "scrape.yml").write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n{job}")
            argv = [
                binary,
                f"-httpListenAddr=127.0.0.1:{port}",
                f"-storageDataPath={tmp / 'data'}",
                f"-promscrape.config={tmp / 'scrape.yml'}",
                "-search.latencyOffset=1s",
                "-retentionPeriod=1d",
            ]
            server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/health", server)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not prometheus_query(url, f"{HISTOGRAM}_bucket"):
                time.sleep(0.5)
            time.sleep(5)
            yield url
    finally:
        if server is not None:
            stop(server)
        stop(agent)


HISTOGRAM = "prometheus_http_request_duration_seconds"


def test_victoriametrics_as_the_source_draws_histogram_percentiles_and_the_host(victoria, tmp_path):
    runtime = Runtime(reading_from(victoria), tmp_path)
    now = time.time()
    window = Window(now - 120, now)

    def drawn(expr: str, agg: str | None = None):
        panel = Panel(id="p", title="P", type="line", queries=[PanelQuery(expr=expr, agg=agg)])
        return panel_frame(runtime.source, panel, window, 120)

    latency = drawn(HISTOGRAM, "p95")  # no metadata: a histogram by its _bucket series
    assert any("handler=/metrics" in str(c) for c in latency.columns), list(latency.columns)
    assert latency.notna().to_numpy().sum() >= 2
    cpu = panel_frame(runtime.source, runtime.dashboards["operations"].panel("cpu-total"), window, 120)
    assert not cpu.empty and cpu.notna().to_numpy().sum() >= 10
    # A summary's own quantiles are never taken for observations: its p99 draws nothing wrong.
    assert prometheus_query(victoria, 'go_gc_duration_seconds{quantile="1"}')
    assert drawn("go_gc_duration_seconds", "p99").empty
