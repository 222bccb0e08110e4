"""The dashboards in a real headless Chromium: they load, fill, refresh, switch theme and range."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard_app.access.secrets import Secrets
from dashboard_app.alerts.rules import AlertRule
from dashboard_app.runtime import Runtime
from dashboard_app.server import create_app
from dashboard_app.settings import load_settings
from layouts import ids
from tsdb.metrics import Sample

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path):
    """A running Pulseboard collecting the real host every second, with pages refreshing every second."""
    settings = load_settings(
        "development",
        environ={
            "PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL": "1",
            "PULSEBOARD_COLLECTORS__DISK_USAGE__INTERVAL": "1",
            "PULSEBOARD_DASHBOARDS__REFRESH": "1",
        },
    )
    runtime = Runtime(settings, tmp_path)
    app = create_app(runtime)
    runtime.start()
    deadline = time.monotonic() + 15
    while not runtime.store.series("pulseboard_system_cpu_usage_ratio") and time.monotonic() < deadline:
        time.sleep(0.1)  # CPU shares need two readings
    yield app, runtime
    runtime.stop()


def plot(dash_duo, dashboard: str, panel: str):
    """Return the rendered Plotly data and layout of one panel."""
    return dash_duo.driver.execute_script(
        "var el = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return el && el.data ? {data: el.data, layout: el.layout} : null;",
        f"#{ids.panel_dom_id(dashboard, panel)}",
    )


def wait_until(check, timeout=20, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def has_data(figure) -> bool:
    if not figure or not figure["data"]:
        return False
    return not (figure["layout"].get("meta") or {}).get("empty")


def pick_range(dash_duo, label: str) -> None:
    """Choose a time range in the bar, as a person would."""
    dash_duo.find_element(f"#{ids.TIME_RANGE}").click()
    option = wait_until(
        lambda: [
            o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == label
        ],
        message="the range options",
    )
    option[0].click()


def open_page(dash_duo, app, path):
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    dash_duo.driver.get(dash_duo.server_url + path)
    dash_duo.wait_for_element(".grid .panel")


@pytest.mark.parametrize("path", ["/executive", "/operations", "/development"])
def test_dash001_each_dashboard_loads_without_console_errors(dash_duo, live, path):
    app, runtime = live
    open_page(dash_duo, app, path)
    dashboard = runtime.dashboards[path.strip("/")]
    dash_duo.wait_for_contains_text("h1", dashboard.title)
    for panel in dashboard.panels:  # every panel gets a figure: data, or words saying why not
        wait_until(lambda p=panel: plot(dash_duo, dashboard.id, p.id), message=f"panel {panel.id}")
    assert dash_duo.get_logs() == []


def test_dash002_every_operations_panel_shows_data(dash_duo, live):
    app, runtime = live
    open_page(dash_duo, app, "/operations")
    for panel in runtime.dashboards["operations"].panels:
        wait_until(
            lambda p=panel: has_data(plot(dash_duo, "operations", p.id)), message=f"data in {panel.id}"
        )


def test_dash003_panels_nothing_feeds_say_no_data_yet(dash_duo, tmp_path):
    settings = load_settings("development", environ={"PULSEBOARD_DEMO": "false"})
    runtime = Runtime(settings, tmp_path)
    app = create_app(runtime)
    runtime.start()
    try:
        open_page(dash_duo, app, "/development")
        wait_until(lambda: plot(dash_duo, "development", "api-latency"), message="latency panel")
        dash_duo.wait_for_contains_text(f"#{ids.panel_dom_id('development', 'api-latency')}", "No data yet")
        assert not dash_duo.driver.find_elements(By.ID, ids.DEMO_BADGE)  # no badge without the demo
    finally:
        runtime.stop()


def test_dash008_demo_fills_every_executive_and_development_panel(dash_duo, live):
    app, runtime = live
    open_page(dash_duo, app, "/executive")
    assert dash_duo.find_element(f"#{ids.DEMO_BADGE}").text.lower() == "demo data"
    for panel in runtime.dashboards["executive"].panels:
        wait_until(lambda p=panel: has_data(plot(dash_duo, "executive", p.id)), message=f"data in {panel.id}")
    revenue = wait_until(lambda: plot(dash_duo, "executive", "revenue"), message="the revenue stat")["data"][
        -1
    ]
    assert revenue["type"] == "indicator" and revenue["value"] > 0  # revenue per hour from the demo shop
    dash_duo.driver.get(dash_duo.server_url + "/development")
    dash_duo.wait_for_element(".grid .panel")
    for panel in runtime.dashboards["development"].panels:
        if panel.id.startswith("pulseboard-"):
            continue  # Pulseboard's own rates need a few collections; covered by the API tests
        wait_until(
            lambda p=panel: has_data(plot(dash_duo, "development", p.id)), message=f"data in {panel.id}"
        )
    assert dash_duo.get_logs() == []


def test_dash004_the_cpu_line_grows_after_a_refresh(dash_duo, live):
    app, _ = live
    open_page(dash_duo, app, "/operations")

    def points():
        figure = plot(dash_duo, "operations", "cpu-total")
        return len(figure["data"][0]["x"]) if has_data(figure) else 0

    before = wait_until(points, message="first CPU points")
    wait_until(lambda: points() > before, message="more CPU points after a refresh")


def test_dash005_theme_toggle_changes_the_background_and_is_remembered(dash_duo, live):
    app, _ = live
    open_page(dash_duo, app, "/operations")
    background = lambda: dash_duo.driver.execute_script(  # noqa: E731
        "return getComputedStyle(document.body).backgroundColor"
    )
    light = background()
    dash_duo.find_element(f"#{ids.THEME_TOGGLE}").click()
    dark = wait_until(lambda: background() if background() != light else None, message="dark background")
    assert dark == "rgb(11, 17, 32)"
    wait_until(  # the graph may be between two renders when asked: then ask again
        lambda: (
            ((plot(dash_duo, "operations", "cpu-total") or {}).get("layout") or {})
            .get("font", {})
            .get("color")
            == "#e5e7eb"
        ),
        message="figures in dark colours",
    )
    dash_duo.driver.refresh()
    dash_duo.wait_for_element(".grid .panel")
    wait_until(lambda: background() == dark, message="the theme kept after a reload")


def test_dash006_time_range_picker_changes_the_x_range(dash_duo, live):
    app, _ = live
    open_page(dash_duo, app, "/operations")

    def span_seconds():
        figure = plot(dash_duo, "operations", "cpu-total")
        if not has_data(figure):
            return None
        start, end = (
            pd.Timestamp(x, unit="ms") if isinstance(x, (int, float)) else pd.Timestamp(x)
            for x in figure["layout"]["xaxis"]["range"]
        )
        return (end - start).total_seconds()

    assert abs(wait_until(span_seconds, message="x-range") - 900) < 5
    pick_range(dash_duo, "Last hour")
    wait_until(lambda: abs((span_seconds() or 0) - 3600) < 5, message="a one-hour x-range")


def test_dash015_dragging_across_a_chart_zooms_the_page_to_that_span(dash_duo, live):
    app, _ = live
    open_page(dash_duo, app, "/operations")
    wait_until(lambda: has_data(plot(dash_duo, "operations", "cpu-total")), message="CPU data")
    area = dash_duo.find_element(f"#{ids.panel_dom_id('operations', 'cpu-total')} .nsewdrag")
    width, height = area.size["width"], area.size["height"]
    # Selenium 4.2 measures the offset from the element's top-left corner.
    # From 60 % of the 15 minutes to past the right end (the drag stops at the axis): the fresh
    # readings are at the right end, so the chosen span holds them.
    drag = ActionChains(dash_duo.driver).move_to_element_with_offset(area, int(0.6 * width), height // 2)
    drag.click_and_hold().move_by_offset(int(0.4 * width) + 20, 0).release().perform()

    def zoomed():
        start = dash_duo.find_element(f"#{ids.CUSTOM_START}").get_attribute("value")
        end = dash_duo.find_element(f"#{ids.CUSTOM_END}").get_attribute("value")
        if not (start and end):
            return None
        return (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()

    span = wait_until(zoomed, message="the custom range set by the drag")
    assert 5 * 60 <= span <= 8 * 60, span  # about 6 minutes, widened to whole minutes
    assert dash_duo.find_element(f"#{ids.TIME_RANGE}").text.startswith("Custom")

    def drawn_span():
        figure = plot(dash_duo, "operations", "cpu-total")
        x = figure and figure["layout"].get("xaxis", {}).get("range")
        if not x:
            return None
        start, end = (
            pd.Timestamp(v, unit="ms") if isinstance(v, (int, float)) else pd.Timestamp(v) for v in x
        )
        return (end - start).total_seconds()

    wait_until(lambda: abs((drawn_span() or 0) - span) < 2, message="every panel redrawn for the span")
    assert dash_duo.get_logs() == []


def test_dash007_history_from_before_a_restart_is_on_the_page(dash_duo, tmp_path):
    settings = load_settings("development", environ={"PULSEBOARD_DASHBOARDS__REFRESH": "1"})
    first = Runtime(settings, tmp_path)
    ten_minutes_ago = time.time() - 600
    first.store.append(
        Sample("pulseboard_system_cpu_usage_ratio", (), 0.5, ten_minutes_ago + 5 * i) for i in range(60)
    )
    first.stop()  # saves everything to tmp_path

    second = Runtime(settings, tmp_path)
    app = create_app(second)
    second.start()
    try:
        open_page(dash_duo, app, "/operations")

        def oldest_point():
            figure = plot(dash_duo, "operations", "cpu-total")
            return has_data(figure) and min(x for x in figure["data"][0]["x"] if x is not None)

        oldest = wait_until(oldest_point, message="CPU history")
        assert oldest / 1000 <= ten_minutes_ago + 5  # epoch ms of the first sample from before the restart
    finally:
        second.stop()


def test_dash009_an_application_pushes_a_metric_and_sees_it_on_its_own_dashboard(dash_duo, tmp_path):
    runtime = Runtime(load_settings("development", environ={"PULSEBOARD_DEMO": "false"}), tmp_path)
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    api = dash_duo.server_url + "/api/v1/monitoring"
    definition = {"name": "shop_queue_depth", "type": "gauge", "help": "Jobs waiting", "unit": "count"}
    assert requests.post(api + "/metrics/custom/register", json=definition, timeout=10).status_code == 201
    now = time.time()
    samples = [
        {"name": "shop_queue_depth", "value": v, "timestamp": now - 60 + 10 * i}
        for i, v in enumerate([3, 5, 8, 6, 4, 7])
    ]
    assert requests.post(api + "/metrics/custom/record", json={"samples": samples}, timeout=10).ok
    panel = {"id": "queue", "title": "Queue depth", "type": "line", "queries": [{"expr": "shop_queue_depth"}]}
    body = {"id": "shop", "title": "Shop", "access": "operations", "panels": [panel]}
    assert requests.post(api + "/dashboards/create", json=body, timeout=10).status_code == 201

    dash_duo.driver.get(dash_duo.server_url + "/operations")
    dash_duo.wait_for_element(".grid .panel")
    dash_duo.find_element(f"#{ids.nav_link('shop')}").click()  # the new dashboard is in the bar
    dash_duo.wait_for_contains_text("h1", "Shop")
    figure = wait_until(lambda: has_data(plot(dash_duo, "shop", "queue")) and plot(dash_duo, "shop", "queue"))
    assert [y for y in figure["data"][0]["y"] if y is not None] == [3, 5, 8, 6, 4, 7]
    assert dash_duo.get_logs() == []


def test_dash010_a_firing_rule_shows_in_the_banner_on_the_alerts_page_and_on_its_chart(dash_duo, tmp_path):
    settings = load_settings(
        "development", environ={"PULSEBOARD_DEMO": "false", "PULSEBOARD_DASHBOARDS__REFRESH": "1"}
    )
    runtime = Runtime(settings, tmp_path)
    now = time.time()
    runtime.store.append(
        Sample("pulseboard_system_cpu_usage_ratio", (), 0.97, now - 60 + i) for i in range(60)
    )
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    rule = {
        "id": "cpu-test",
        "name": "CPU test",
        "query": "pulseboard_system_cpu_usage_ratio",
        "aggregation": "avg",
        "window": 30,
        "condition": ">",
        "threshold": 0.9,
        "for": 0,
        "severity": "critical",
        "annotations": {"summary": "CPU at {{ value | percent }}"},
    }
    api = dash_duo.server_url + "/api/v1/monitoring"
    assert requests.post(api + "/alerts/rules", json=rule, timeout=10).status_code == 201
    assert runtime.alerts.evaluate() == 1

    dash_duo.driver.get(dash_duo.server_url + "/operations")
    dash_duo.wait_for_contains_text(f"#{ids.ALERT_BANNER}", "CPU test")
    assert "CPU at 97.0%" in dash_duo.find_element(f"#{ids.ALERT_BANNER}").text
    shaded = wait_until(
        lambda: (
            (plot(dash_duo, "operations", "cpu-total") or {"layout": {}})["layout"]
            .get("meta", {})
            .get("alerts")
        ),
        message="the firing period shaded on the CPU chart",
    )
    assert shaded == 1
    dash_duo.find_element(f"#{ids.nav_link('alerts')}").click()
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_BODY}", "CPU test")
    assert "firing" in dash_duo.find_element(f"#{ids.ALERTS_BODY}").text
    assert dash_duo.get_logs() == []


def test_dash017_an_operator_mutes_a_firing_alert_from_the_alerts_page_and_ends_it(dash_duo, tmp_path):
    password = "a-long-enough-password"
    settings = load_settings(
        "development",
        environ={
            "PULSEBOARD_DEMO": "false",
            "PULSEBOARD_AUTH__ENABLED": "true",
            "PULSEBOARD_DASHBOARDS__REFRESH": "1",
        },
    )
    runtime = Runtime(settings, tmp_path, secrets=Secrets("s" * 48, password))
    runtime.users.set("olga", password, "operator", ["operations"])
    now = time.time()
    runtime.store.append(
        Sample("pulseboard_system_cpu_usage_ratio", (), 0.97, now - 60 + i) for i in range(60)
    )
    rule = {
        "id": "cpu-test",
        "name": "CPU test",
        "query": "pulseboard_system_cpu_usage_ratio",
        "window": 30,
        "condition": ">",
        "threshold": 0.9,
        "labels": {"team": "infra"},
    }
    runtime.rules.put(AlertRule.model_validate(rule))
    assert runtime.alerts.evaluate() == 1
    app = create_app(runtime)
    dash_duo.start_server(app, navigate=False, host="127.0.0.1", port=8059)
    login(dash_duo, "olga", password)
    dash_duo.wait_for_element(".grid .panel")
    dash_duo.driver.get(dash_duo.server.url + "/alerts")
    dash_duo.wait_for_contains_text(f"#{ids.ALERT_BANNER}", "CPU test")
    dash_duo.find_element(f"#{ids.SILENCE_LABELS}").send_keys("team=infra")
    dash_duo.find_element(f"#{ids.SILENCE_REASON}").send_keys("kernel upgrade")
    dash_duo.find_element(f"#{ids.SILENCE_CREATE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.SILENCE_MESSAGE}", "Muted until")
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_BODY}", "kernel upgrade")
    body = dash_duo.find_element(f"#{ids.ALERTS_BODY}").text
    assert "muted (firing)" in body and "olga" in body
    wait_until(
        lambda: "CPU test" not in dash_duo.find_element(f"#{ids.ALERT_BANNER}").text,
        message="the banner quiet while the alert is muted",
    )
    [entry] = [e for e in runtime.audit.read() if e["action"] == "SILENCE"]
    assert entry["who"] == "olga" and "kernel upgrade" in entry["detail"]

    dash_duo.find_element(f"#{ids.ALERTS_BODY} button").click()  # End now
    dash_duo.wait_for_contains_text(f"#{ids.SILENCE_MESSAGE}", "ended")
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_BODY}", "No silence in force")
    dash_duo.wait_for_contains_text(f"#{ids.ALERT_BANNER}", "CPU test")
    assert runtime.silences.active() == []
    assert dash_duo.get_logs() == []


def test_dash011_the_trends_page_downloads_what_its_chart_shows(dash_duo, tmp_path):
    runtime = Runtime(load_settings("development", environ={"PULSEBOARD_DEMO": "false"}), tmp_path)
    now = time.time()
    runtime.store.append(Sample("shop_queue_depth", (), float(i % 17), now - 600 + 5 * i) for i in range(120))
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    dash_duo.driver.get(dash_duo.server_url + "/trends")
    picker = f"#{ids.TRENDS_SERIES}"

    def picked():
        if "shop_queue_depth" in dash_duo.find_element(picker).text:
            return True
        dash_duo.select_dcc_dropdown(
            picker, value="shop_queue_depth (all series)"
        )  # once the list has loaded
        dash_duo.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        return "shop_queue_depth" in dash_duo.find_element(picker).text

    wait_until(picked, message="the series picked")

    def chart():
        figure = dash_duo.driver.execute_script(
            f"var el = document.querySelector('#{ids.TRENDS_GRAPH} .js-plotly-plot');"
            "return el && el.data ? {data: el.data, layout: el.layout} : null;"
        )
        return figure if has_data(figure) else None

    figure = wait_until(chart, message="the trend chart")
    line = figure["data"][0]
    shown = {round(x / 1000, 3): y for x, y in zip(line["x"], line["y"]) if y is not None}
    assert any(t.get("name", "").endswith("(linear)") for t in figure["data"])  # the forecast line
    href = dash_duo.find_element(f"#{ids.TRENDS_CSV}").get_attribute("href")
    text = requests.get(href, timeout=10).text
    header, *body = [r.split(",") for r in text.strip().splitlines()]
    assert header == ["time", "shop_queue_depth [none]"]
    exported = {
        round(pd.Timestamp(t).timestamp(), 3): float(v)
        for t, v in body  # ISO 8601 UTC times
    }
    # A redraw between reading the chart and the link may move the window's edge by a bucket.
    common = exported.keys() & shown.keys()
    assert len(common) >= max(len(exported), len(shown)) - 1
    assert all(exported[t] == pytest.approx(shown[t], abs=1e-4) for t in common)  # the chart keeps 4 decimals
    assert dash_duo.get_logs() == []


def test_dash012_each_panel_links_its_csv_for_the_range_shown(dash_duo, live):
    app, _ = live
    open_page(dash_duo, app, "/operations")
    link = lambda: dash_duo.find_element(f"#{ids.panel_dom_id('operations', 'cpu-total')} .panel-csv")  # noqa: E731
    wait_until(lambda: "range=15m" in link().get_attribute("href"), message="the 15 minute CSV link")
    pick_range(dash_duo, "Last hour")
    wait_until(lambda: "range=1h" in link().get_attribute("href"), message="the link follows the range")
    response = requests.get(link().get_attribute("href"), timeout=10)
    assert response.ok and response.text.startswith("time,all cores [ratio]")
    assert len(response.text.splitlines()) >= 2  # a header and the readings of the last hour


def test_dash013_titles_and_labels_from_the_api_render_as_text(dash_duo, tmp_path):
    runtime = Runtime(load_settings("development", environ={"PULSEBOARD_DEMO": "false"}), tmp_path)
    evil = '<img src=x onerror="document.title=`owned`">'
    runtime.store.append(
        [Sample("shop_queue_depth", (("queue", '<img src=x onerror="document.title=1">'),), 3.0, time.time())]
    )
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    panel = {
        "id": "queue",
        "title": evil,
        "type": "table",
        "queries": [{"expr": "shop_queue_depth", "legend": "{queue}"}],
    }
    body = {
        "id": "evil",
        "title": evil,
        "access": "operations",
        "description": "javascript:alert(1)",
        "panels": [panel],
    }
    api = dash_duo.server_url + "/api/v1/monitoring"
    assert requests.post(api + "/dashboards/create", json=body, timeout=10).status_code == 201
    dash_duo.driver.get(dash_duo.server_url + "/evil")
    dash_duo.wait_for_contains_text("h1", "<img src=x")  # shown as the characters it is made of
    wait_until(lambda: has_data(plot(dash_duo, "evil", "queue")), message="the table")
    time.sleep(1)
    assert dash_duo.driver.title != "owned" and dash_duo.driver.title != "1"
    assert not dash_duo.driver.find_elements(By.CSS_SELECTOR, "main img")
    response = requests.get(dash_duo.server_url + "/evil", timeout=10)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    api_response = requests.get(api + "/version", timeout=10)
    assert api_response.headers["Cache-Control"] == "no-store"


def test_dash018_a_pushed_label_with_markup_shows_as_text_in_every_chart_element(dash_duo, tmp_path):
    runtime = Runtime(load_settings("development", environ={"PULSEBOARD_DEMO": "false"}), tmp_path)
    markup = '<a href="https://example.com/x">click</a> <b>bold</b> &amp;'
    now = time.time()
    runtime.store.append(
        Sample("shop_queue_depth", (("queue", markup),), float(i % 5), now - 60 + i) for i in range(60)
    )
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8061)
    panels = [
        {
            "id": kind,
            "title": kind,
            "type": kind,
            "queries": [{"expr": "shop_queue_depth", "legend": "{queue}"}],
        }
        for kind in ("line", "bar", "table", "pie", "heatmap")
    ]
    body = {"id": "markup", "title": "Markup", "access": "operations", "panels": panels}
    api = dash_duo.server_url + "/api/v1/monitoring"
    assert requests.post(api + "/dashboards/create", json=body, timeout=10).status_code == 201
    dash_duo.driver.get(dash_duo.server_url + "/markup")
    for kind in ("line", "bar", "table", "pie", "heatmap"):
        wait_until(lambda k=kind: has_data(plot(dash_duo, "markup", k)), message=kind)
    time.sleep(1)
    svg_text = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('.main-svg text')).map(t => t.textContent).join('\\n')"
    )
    assert markup in svg_text  # the characters themselves: in the legend, the bar's tick, the table's cell
    links = dash_duo.driver.find_elements(By.CSS_SELECTOR, ".main-svg a")
    assert links == []  # no clickable link made of a label
    bold = dash_duo.driver.find_elements(By.CSS_SELECTOR, ".main-svg text [style*='bold']")
    assert bold == []


def login(dash_duo, user: str, password: str) -> None:
    dash_duo.driver.get(dash_duo.server.url + "/login")
    dash_duo.find_element("input[name=user]").send_keys(user)
    dash_duo.find_element("input[name=password]").send_keys(password)
    dash_duo.find_element("button[type=submit]").click()


def test_dash014_people_see_their_dashboards_and_an_admin_makes_and_revokes_a_key(dash_duo, tmp_path):
    password = "a-long-enough-password"
    settings = load_settings(
        "development", environ={"PULSEBOARD_DEMO": "false", "PULSEBOARD_AUTH__ENABLED": "true"}
    )
    runtime = Runtime(settings, tmp_path, secrets=Secrets("s" * 48, password))
    runtime.users.set("vic", password, "viewer", ["operations"])
    app = create_app(runtime)
    dash_duo.start_server(app, navigate=False, host="127.0.0.1", port=8059)  # the first page is the login

    login(dash_duo, "vic", password)
    dash_duo.wait_for_element(".grid .panel")
    links = wait_until(
        lambda: [a.text for a in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".nav-links .nav-link")],
        message="the navigation",
    )
    assert "Operations" in links and "Executive" not in links and "Keys" not in links
    dash_duo.driver.get(dash_duo.server.url + "/executive")
    assert "may not see the executive dashboards" in dash_duo.driver.find_element(By.TAG_NAME, "body").text
    dash_duo.driver.get(dash_duo.server.url + "/operations")
    dash_duo.find_element("form.logout-form button").click()  # a POST: a link cannot log anyone out
    dash_duo.wait_for_element("input[name=user]")
    assert "/login" in dash_duo.driver.current_url

    login(dash_duo, "admin", password)
    dash_duo.wait_for_element(".grid .panel")
    dash_duo.driver.get(dash_duo.server.url + "/admin")
    dash_duo.find_element(f"#{ids.ADMIN_KEY_NAME}").send_keys("shop-backend")
    dash_duo.find_element(f"#{ids.ADMIN_KEY_CREATE}").click()
    token = wait_until(
        lambda: dash_duo.driver.find_elements(By.ID, ids.ADMIN_NEW_KEY_TOKEN), message="the new key"
    )[0].text
    push = dash_duo.server.url + "/api/v1/monitoring/metrics/custom/register"
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.post(
        push, json={"name": "shop_jobs_total", "type": "counter"}, headers=headers, timeout=10
    ).ok
    dash_duo.find_element(f"#{ids.ADMIN_KEYS} button").click()  # revoke
    dash_duo.wait_for_contains_text(f"#{ids.ADMIN_KEYS}", "revoked")
    refused = requests.post(
        push, json={"name": "shop_jobs_total", "type": "counter"}, headers=headers, timeout=10
    )
    assert refused.status_code == 401
    unexpected = [
        e for e in dash_duo.get_logs() if "/executive" not in e["message"]
    ]  # that 403 was the point
    assert unexpected == []


def test_dash016_a_chart_kept_up_by_patches_draws_what_a_whole_figure_draws(dash_duo, tmp_path):
    """Refreshes that send only the new points leave the chart exactly as a new viewer's full figure."""
    from dashboard_app.access.identity import OPEN
    from dashboard_app.pages.panels import Window
    from tests.servers import quiet_settings

    runtime = Runtime(quiet_settings(dashboards__refresh="1"), tmp_path)
    cpu = "pulseboard_system_cpu_usage_ratio"
    now = time.time()
    runtime.store.append(Sample(cpu, (), 0.2 + 0.01 * (i % 13), now - 900 + i) for i in range(900))
    views = runtime.panel_views
    patched = []
    real_patch = views.patch
    views.patch = lambda held, new: patched.append(p := real_patch(held, new)) or p
    app = create_app(runtime)
    feeding = threading.Event()

    def feed() -> None:  # a new CPU reading every half second, as a collector would
        i = 0
        while not feeding.wait(0.5):
            runtime.store.append([Sample(cpu, (), 0.3 + 0.05 * (i % 7), time.time())])
            i += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        open_page(dash_duo, app, "/operations")
        wait_until(lambda: has_data(plot(dash_duo, "operations", "cpu-total")), message="the CPU chart")
        wait_until(lambda: sum(p is not None for p in patched) >= 5, timeout=30, message="five patches")
    finally:
        feeding.set()
        feeder.join()
    source = runtime.sources.for_caller(OPEN).pages
    panel = runtime.dashboards["operations"].panel("cpu-total")

    def matches() -> bool:
        drawn = plot(dash_duo, "operations", "cpu-total")
        start, end = (float(t) for t in drawn["layout"]["xaxis"]["range"])
        pv = views.view(source, "operations", panel, {}, "light", Window(start / 1000, end / 1000), False)
        whole = views.answer(source, pv).plain
        shown = [(t.get("name"), t["x"], t["y"]) for t in drawn["data"]]
        return shown == [(t.get("name"), t["x"], t["y"]) for t in whole["data"]]

    wait_until(matches, timeout=10, message="the patched chart to equal the whole figure")
    assert dash_duo.get_logs() == []
