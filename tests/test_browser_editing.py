"""Explore and the dashboard editor in a real headless Chromium, as analysts, editors and viewers use them."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import requests
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard_app.access.secrets import Secrets
from dashboard_app.runtime import Runtime
from dashboard_app.server import create_app
from dashboard_app.settings import load_settings
from layouts import ids
from tests.test_browser import has_data, login, wait_until
from tsdb.metrics import Sample

pytestmark = pytest.mark.browser
PASSWORD = "a-long-enough-password"
SHOP = {
    "id": "shop",
    "title": "Shop",
    "access": "operations",
    "panels": [
        {"id": "depth", "title": "Queue depth", "type": "line", "queries": [{"expr": "shop_queue_depth"}]},
    ],
}


def _runtime(tmp_path, **environ) -> Runtime:
    settings = load_settings("development", environ={"PULSEBOARD_DEMO": "false", **environ})
    runtime = Runtime(settings, tmp_path, secrets=Secrets("s" * 48, PASSWORD))
    now = time.time()
    for queue, base in (("orders", 3.0), ("mail", 10.0)):
        runtime.store.append(
            Sample("shop_queue_depth", (("queue", queue),), base + (i % 7), now - 900 + 5 * i)
            for i in range(181)
        )
    runtime.store.append(Sample("shop_sessions_total", (), float(i), now - 900 + 5 * i) for i in range(181))
    return runtime


def figure_of(dash_duo, selector: str):
    return dash_duo.driver.execute_script(
        "var el = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return el && el.data ? {data: el.data, layout: el.layout} : null;",
        selector,
    )


def textarea(dash_duo, selector: str):
    return dash_duo.find_element(selector)


def suggestions(dash_duo) -> list[str]:
    return [e.text.split("\n")[0] for e in dash_duo.find_elements(f"#{ids.EXPLORE_SUGGESTIONS} .suggestion")]


def test_edit001_explore_completes_draws_a_graph_and_a_table_and_downloads_what_it_draws(dash_duo, tmp_path):
    runtime = _runtime(tmp_path)
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    dash_duo.driver.get(dash_duo.server.url + "/explore")
    editor = textarea(dash_duo, f"#{ids.EXPLORE_QUERY}")
    # A metric name completes from the source's own listing; Tab takes the first suggestion.
    editor.send_keys("shop_q")
    wait_until(lambda: "shop_queue_depth" in suggestions(dash_duo), message="the metric suggested")
    editor.send_keys(Keys.TAB)
    wait_until(lambda: editor.get_attribute("value") == "shop_queue_depth", message="the name put in")
    # Label names and values complete inside braces.
    editor.send_keys("{qu")
    wait_until(lambda: suggestions(dash_duo) == ["queue"], message="the label suggested")
    dash_duo.find_element(f"#{ids.EXPLORE_SUGGESTIONS} .suggestion").click()
    wait_until(lambda: editor.get_attribute("value") == "shop_queue_depth{queue", message="the label put in")
    editor.send_keys('=~"')
    wait_until(lambda: sorted(suggestions(dash_duo)) == ["mail", "orders"], message="the values suggested")
    editor.send_keys(Keys.END, Keys.BACKSPACE, Keys.BACKSPACE, Keys.BACKSPACE, Keys.BACKSPACE)
    # A wrong text says what and where; the graph keeps the last good query.
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys("rate(shop_queue_depth[5m]")
    dash_duo.wait_for_contains_text(f"#{ids.EXPLORE_ERROR}", "not closed")
    caret = dash_duo.find_element(f"#{ids.EXPLORE_ERROR} .explore-caret").text
    assert caret.splitlines()[1].index("^") == 4  # under the '(' that is not closed
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys("shop_queue_depth")
    wait_until(lambda: not dash_duo.find_element(f"#{ids.EXPLORE_ERROR}").text, message="the error gone")

    def two_lines():
        figure = figure_of(dash_duo, f"#{ids.EXPLORE_GRAPH}")
        return figure if has_data(figure) and len(figure["data"]) == 2 else None

    figure = wait_until(two_lines, message="two series drawn")
    assert {t["name"] for t in figure["data"]} == {"mail", "orders"}
    # The table view lists the same series with their last values.
    dash_duo.find_element(f"#{ids.EXPLORE_VIEW} input[value=table]").click()
    rows = wait_until(lambda: dash_duo.find_elements(f"#{ids.EXPLORE_TABLE} tbody tr"), message="table rows")
    assert sorted(r.find_element(By.CSS_SELECTOR, ".series").text for r in rows) == ["mail", "orders"]
    assert not dash_duo.find_element(f"#{ids.EXPLORE_GRAPH}").is_displayed()
    # The CSV holds exactly the points drawn.
    href = dash_duo.find_element(f"#{ids.EXPLORE_CSV}").get_attribute("href")
    text = requests.get(href, timeout=10).text
    header, *body = [r.split(",") for r in text.strip().splitlines()]
    assert header[0] == "time" and sorted(header[1:]) == ["mail [none]", "orders [none]"]
    drawn = {t["name"]: dict(zip(t["x"], t["y"])) for t in figure["data"]}
    for column, name in enumerate(header[1:], start=1):
        series = drawn[name.split(" [")[0]]
        exported = {round(pd.Timestamp(r[0]).timestamp() * 1000): float(r[column]) for r in body if r[column]}
        shown = {round(float(x)): y for x, y in series.items() if y is not None}
        assert exported.keys() == shown.keys()
        assert all(exported[t] == pytest.approx(shown[t], abs=1e-4) for t in shown)
    # The address holds the view: opened again, it shows the same query and range.
    wait_until(lambda: "query=shop_queue_depth" in dash_duo.driver.current_url, message="the address")
    shared = dash_duo.driver.current_url
    dash_duo.driver.get(dash_duo.server_url + "/operations")
    dash_duo.driver.get(shared)
    wait_until(
        lambda: dash_duo.find_element(f"#{ids.EXPLORE_QUERY}").get_attribute("value") == "shop_queue_depth",
        message="the shared query",
    )
    wait_until(lambda: two_lines(), message="the shared view drawn")
    # The history keeps the query drawn; Add to dashboard takes it to the editor.
    dash_duo.wait_for_contains_text(f"#{ids.EXPLORE_HISTORY_LIST}", "shop_queue_depth")
    assert "query=shop_queue_depth" in dash_duo.find_element(f"#{ids.EXPLORE_ADD}").get_attribute("href")
    assert dash_duo.get_logs() == []


def card(dash_duo, panel: str):
    return dash_duo.find_element(f'.editor-card[data-panel="{panel}"]')


def settled(read):
    """Read the page again if it was redrawn while being read."""
    for _ in range(20):
        try:
            return read()
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.1)
    return read()


def place_of(dash_duo, panel: str) -> tuple[int, int, int, int]:
    def read():
        c = card(dash_duo, panel)
        return tuple(int(c.get_attribute(f"data-{k}")) for k in "xywh")

    return settled(read)


def status(dash_duo) -> str:
    return dash_duo.find_element(f"#{ids.EDIT_STATUS}").text


def test_edit002_an_editor_makes_a_panel_from_a_query_places_it_saves_restores_and_is_told_of_a_conflict(
    dash_duo, tmp_path
):
    runtime = _runtime(tmp_path)
    runtime.dashboard_store.create(SHOP, "setup")
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    dash_duo.driver.get(dash_duo.server_url + "/edit?dashboard=shop")
    wait_until(lambda: settled(lambda: card(dash_duo, "depth")), message="the shop dashboard's card")
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_VERSION}", "version 1")
    # Add a panel and type its query: the preview draws it while typing.
    dash_duo.find_element(f"#{ids.EDIT_ADD}").click()
    wait_until(lambda: settled(lambda: card(dash_duo, "new-panel")), message="the new card")
    title = dash_duo.find_element(".edit-field-title input")
    title.send_keys(Keys.CONTROL, "a")
    title.send_keys("Sessions per second", Keys.TAB)
    query = dash_duo.find_element(".edit-field-expr-0 textarea")
    query.send_keys("rate(shop_sessions_total[1m])")

    def preview():
        figure = figure_of(dash_duo, f"#{ids.EDIT_PREVIEW}")
        return figure if has_data(figure) else None

    wait_until(preview, message="the preview draws the query")
    # A mistake is shown beside its field and is never saved.
    query.send_keys(Keys.END, Keys.BACKSPACE)
    dash_duo.wait_for_contains_text(".edit-field-expr-0 .edit-error", "parenthesis")
    dash_duo.find_element(f"#{ids.EDIT_SAVE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "Not saved")
    assert runtime.dashboard_store.version("shop") == 1
    query.send_keys(")")
    wait_until(lambda: not dash_duo.find_element(".edit-field-expr-0 .edit-error").text, message="fixed")
    # Change the chart type.
    dash_duo.select_dcc_dropdown(".edit-field-type", value="Bar")
    wait_until(lambda: "bar" in settled(lambda: card(dash_duo, "sessions-per-second").text), message="bar")
    # Drag it two columns right, then make it wider by its corner.
    x, y, w, h = place_of(dash_duo, "sessions-per-second")
    grid = dash_duo.find_element(f"#{ids.EDIT_GRID}")
    column = grid.size["width"] / 12
    ActionChains(dash_duo.driver).drag_and_drop_by_offset(
        card(dash_duo, "sessions-per-second"), int(2 * column), 0
    ).perform()
    wait_until(lambda: place_of(dash_duo, "sessions-per-second")[0] == x + 2, message="moved two columns")
    handle = settled(
        lambda: card(dash_duo, "sessions-per-second").find_element(By.CSS_SELECTOR, ".editor-resize")
    )
    ActionChains(dash_duo.driver).drag_and_drop_by_offset(handle, int(2 * column), 60).perform()
    wait_until(lambda: place_of(dash_duo, "sessions-per-second")[2] == w + 2, message="two columns wider")
    moved = place_of(dash_duo, "sessions-per-second")
    assert moved[3] > h  # and taller
    # Save: a new version, and the dashboard's page shows the panel where it was put.
    dash_duo.find_element(f"#{ids.EDIT_SAVE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "as version 2")
    saved = runtime.dashboard_store.get("shop").panel("sessions-per-second")
    assert saved.type == "bar" and (saved.grid.x, saved.grid.y, saved.grid.w, saved.grid.h) == moved
    dash_duo.driver.get(dash_duo.server_url + "/shop")
    dash_duo.wait_for_contains_text(
        f"#{ids.panel_dom_id('shop', 'sessions-per-second')}", "Sessions per second"
    )
    # Restore the first version: the panel is gone again, as a third version.
    dash_duo.driver.get(dash_duo.server_url + "/edit?dashboard=shop")
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_VERSION}", "version 2")
    dash_duo.find_element(f"#{ids.EDIT_VERSIONS} button").click()  # the newest earlier version: 1
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "Version 1 restored as version 3")
    assert [p.id for p in runtime.dashboard_store.get("shop").panels] == ["depth"]
    # Someone else saves while this page is open: this page's save is refused and says so.
    other = {**SHOP, "title": "Shop (theirs)"}
    runtime.dashboard_store.update("shop", other, "maria", base=3)
    title = dash_duo.find_element(f"#{ids.EDIT_TITLE}")
    title.send_keys(Keys.CONTROL, "a")
    title.send_keys("Shop (mine)", Keys.TAB)
    time.sleep(0.6)
    dash_duo.find_element(f"#{ids.EDIT_SAVE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "changed by maria since you opened it")
    assert runtime.dashboard_store.get("shop").title == "Shop (theirs)"
    assert dash_duo.get_logs() == []


def test_edit003_a_viewer_cannot_edit_and_an_editor_sees_only_their_levels(dash_duo, tmp_path):
    runtime = _runtime(tmp_path, PULSEBOARD_AUTH__ENABLED="true")
    now = time.time()
    runtime.store.append(
        Sample("pulseboard_business_revenue_total", (), float(i), now - 300 + 5 * i) for i in range(60)
    )
    runtime.store.append(
        Sample("pulseboard_system_load_average", (), 0.5, now - 300 + 5 * i) for i in range(60)
    )
    runtime.users.set("vic", PASSWORD, "viewer", ["operations"])
    runtime.users.set("eddie", PASSWORD, "editor", ["operations"])
    app = create_app(runtime)
    dash_duo.start_server(app, navigate=False, host="127.0.0.1", port=8059)
    login(dash_duo, "vic", PASSWORD)
    dash_duo.wait_for_element(".grid .panel")
    links = dash_duo.find_element(f"#{ids.NAV_LINKS}").text
    assert "Edit" not in links and "Explore" not in links
    cookies = {c["name"]: c["value"] for c in dash_duo.driver.get_cookies()}
    for page, role in (("/edit", "editor"), ("/explore", "analyst")):
        refused = requests.get(dash_duo.server.url + page, cookies=cookies, timeout=10)
        assert refused.status_code == 403 and f"needs the {role} role" in refused.text
    dash_duo.driver.delete_all_cookies()
    login(dash_duo, "eddie", PASSWORD)
    dash_duo.wait_for_element(".grid .panel")
    dash_duo.driver.get(dash_duo.server.url + "/explore")
    editor = dash_duo.find_element(f"#{ids.EXPLORE_QUERY}")
    editor.send_keys("pulseboard_")
    wait_until(
        lambda: "pulseboard_system_load_average" in suggestions(dash_duo), message="own level suggested"
    )
    assert not [s for s in suggestions(dash_duo) if s.startswith("pulseboard_business")]
    # In the editor's preview, another level's metric draws nothing.
    dash_duo.driver.get(dash_duo.server.url + "/edit")
    wait_until(lambda: dash_duo.find_elements(".editor-card"), message="the editor")
    query = dash_duo.find_element(".edit-field-expr-0 textarea")
    query.send_keys(Keys.CONTROL, "a")
    query.send_keys("pulseboard_business_revenue_total")
    wait_until(
        lambda: (
            (figure_of(dash_duo, f"#{ids.EDIT_PREVIEW}") or {}).get("layout", {}).get("meta", {}).get("empty")
        ),
        message="the preview shows nothing of another level",
    )
    preview = figure_of(dash_duo, f"#{ids.EDIT_PREVIEW}")
    assert not has_data(preview)
    query.send_keys(Keys.CONTROL, "a")
    query.send_keys("pulseboard_system_load_average")
    wait_until(lambda: has_data(figure_of(dash_duo, f"#{ids.EDIT_PREVIEW}")), message="own level drawn")
    # Saving a dashboard of another level is refused.
    access = dash_duo.find_element(f"#{ids.EDIT_ACCESS}")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", access)
    dash_duo.select_dcc_dropdown(access, value="Level: executive")
    dash_duo.find_element(f"#{ids.EDIT_SAVE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "only make dashboards of your levels")


def test_edit004_a_grafana_dashboard_uploaded_in_the_editor_is_reported_and_saved(dash_duo, tmp_path):
    runtime = _runtime(tmp_path)
    app = create_app(runtime)
    dash_duo.start_server(app, host="127.0.0.1", port=8059)
    dash_duo.driver.get(dash_duo.server_url + "/edit")
    wait_until(lambda: dash_duo.find_elements(".editor-card"), message="the editor")
    board = Path(__file__).parent / "data" / "grafana" / "prometheus-2-stats.json"
    dash_duo.find_element(f"#{ids.EDIT_IMPORT} input[type=file]").send_keys(str(board))
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "Imported 'Prometheus 2.0 Stats' from Grafana")
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_REPORT}", "13 of 13 panels mapped")
    assert len(dash_duo.find_elements(".editor-card")) == 13
    dash_duo.find_element(f"#{ids.EDIT_SAVE}").click()
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "as version 1")
    saved = runtime.dashboard_store.get("prometheus-2-0-stats")
    assert saved is not None and len(saved.panels) == 13
    # A JSON that is not a dashboard, pasted, is refused with the reason and nothing changes.
    dash_duo.find_element(".edit-paste summary").click()
    dash_duo.find_element(f"#{ids.EDIT_PASTE}").send_keys('{"title": "nothing"}')
    dash_duo.find_element(f"#{ids.EDIT_PASTE_IMPORT}").click()
    dash_duo.wait_for_contains_text(f"#{ids.EDIT_STATUS}", "Not imported: panels")
    assert len(runtime.dashboard_store.dashboards) == 4
