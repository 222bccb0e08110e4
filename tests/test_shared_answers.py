"""A hundred viewers cost one computation: panel answers shared by view and data version, patches
that extend what a viewer holds, a cache within its size, and answers that never cross levels."""

from __future__ import annotations

import gzip
import json
import threading
import time
from datetime import UTC, datetime

import orjson
import pytest
import requests
from plotly.io.json import to_json_plotly

from dashboard_app.access.identity import OPEN
from dashboard_app.access.secrets import Secrets
from dashboard_app.pages.panels import Window, render_panel
from dashboard_app.pages.patches import MARK, apply_patch
from dashboard_app.runtime import Runtime
from tests.servers import quiet_settings, serving
from tsdb.metrics import Sample

OUTPUT = (
    '..{"dashboard":["ALL"],"panel":["ALL"],"type":"panel-graph"}.figure'
    '...{"dashboard":["ALL"],"type":"panel-render-state"}.data...nav-last-update.children..'
)
CPU = "pulseboard_system_cpu_usage_ratio"
LOAD = "pulseboard_system_load_average"
REVENUE = "pulseboard_business_revenue_total"
SECRETS = Secrets("s" * 48, "correct-horse-battery")
PASSWORD = "a-long-enough-password"


def refresh_body(dashboard: str, panels: list[str], state, tick: int, theme="light", span="15m", custom=None):
    start, end = custom or (None, None)
    state_id = {"type": "panel-render-state", "dashboard": dashboard}
    return {
        "output": OUTPUT,
        "outputs": [
            [
                {"id": {"type": "panel-graph", "dashboard": dashboard, "panel": p}, "property": "figure"}
                for p in panels
            ],
            [{"id": state_id, "property": "data"}],
            {"id": "nav-last-update", "property": "children"},
        ],
        "inputs": [
            {"id": "app-interval", "property": "n_intervals", "value": tick},
            {"id": "nav-time-range", "property": "value", "value": "custom" if custom else span},
            {"id": "nav-custom-start", "property": "value", "value": start},
            {"id": "nav-custom-end", "property": "value", "value": end},
            {"id": "app-theme", "property": "data", "value": theme},
            [],
        ],
        "changedPropIds": ["app-interval.n_intervals"],
        "state": [[{"id": state_id, "property": "data", "value": state}]],
    }


class Viewer:
    """One browser tab of a dashboard: it sends what the page sends and keeps what the page keeps."""

    def __init__(self, url: str, dashboard: str, panels: list[str], http: requests.Session | None = None):
        self.url, self.dashboard, self.panels = url, dashboard, panels
        self.http = http or requests.Session()
        self.state = None
        self.figures: dict[str, dict] = {}
        self.tick = 0

    def refresh(self, **view) -> dict:
        """Ask for the panels; apply what comes back; return {panel: what was sent} (missing: unchanged)."""
        body = refresh_body(self.dashboard, self.panels, self.state, self.tick, **view)
        self.tick += 1
        answer = self.http.post(self.url + "/_dash-update-component", json=body, timeout=30)
        if answer.status_code == 204:
            return {}
        assert answer.status_code == 200, answer.text
        try:
            response = answer.json()["response"]
        except ValueError:
            raise AssertionError(f"not JSON: {answer.headers} {answer.content[:300]!r}") from None
        sent = {}
        for key, props in response.items():
            component = json.loads(key) if key.startswith("{") else {"type": key}
            if component["type"] == "panel-graph":
                sent[component["panel"]] = props["figure"]
            elif component["type"] == "panel-render-state":
                self.state = props["data"]
        for panel, figure in sent.items():
            if isinstance(figure, dict) and MARK in figure:
                self.figures[panel] = apply_patch(self.figures[panel], figure["operations"])
            else:
                self.figures[panel] = figure
        return sent


def host_history(runtime: Runtime, now: float, seconds: int = 900) -> None:
    """A quarter of an hour of CPU and load readings, a second apart."""
    store = runtime.store
    store.append(Sample(CPU, (), 0.2 + 0.01 * (i % 13), now - seconds + i) for i in range(seconds))
    for period in ("1m", "5m", "15m"):
        store.append(
            Sample(LOAD, (("period", period),), 0.5 + 0.001 * i, now - seconds + i) for i in range(seconds)
        )


def panels_of(runtime: Runtime, dashboard: str) -> list[str]:
    return [p.id for p in runtime.dashboards[dashboard].panels]


def showing(runtime: Runtime, dashboard: str, name: str) -> set[str]:
    """The panels of a dashboard whose queries read a metric."""
    return {
        p.id
        for p in runtime.dashboards[dashboard].panels
        if any(name in q.compiled.metrics for q in p.queries)
    }


@pytest.fixture
def shared(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    host_history(runtime, time.time())
    with serving(runtime) as pb:
        yield pb
    runtime.archive.close()


@pytest.fixture
def kept_longer(tmp_path):
    """As ``shared``, with raw samples kept longer than the 15-minute window: the oldest points under a
    window's left edge do not expire (by the wall clock) between an answer made ahead and a fresh render
    of the same key beside it, which would make the two differ for a reason that is not the patching."""
    runtime = Runtime(quiet_settings(store__raw__retention="1h"), tmp_path)
    host_history(runtime, time.time())
    with serving(runtime) as pb:
        yield pb
    runtime.archive.close()


def test_many_viewers_of_one_view_cost_one_computation(shared):
    runtime, panels = shared.runtime, panels_of(shared.runtime, "operations")
    viewers = [Viewer(shared.url, "operations", panels) for _ in range(20)]
    before = runtime.answers.computed
    threads = [threading.Thread(target=v.refresh, kwargs={"span": "24h"}) for v in viewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    computed = runtime.answers.computed - before
    # One answer per panel, or two where the 12-minute step's edge passed during the requests.
    assert len(panels) <= computed <= 2 * len(panels)
    assert all(set(v.figures) == set(panels) for v in viewers)
    first = viewers[0].figures
    assert sum(v.figures == first for v in viewers) >= len(viewers) // 2


def test_a_cached_answer_equals_a_fresh_render(shared):
    runtime = shared.runtime
    dashboard = runtime.dashboards["operations"]
    source = runtime.sources.for_caller(OPEN).pages
    points = runtime.settings.dashboards.points
    compared = 0
    for _ in range(5):
        viewer = Viewer(shared.url, "operations", [p.id for p in dashboard.panels])
        viewer.refresh()
        now = time.time()
        for panel in dashboard.panels:
            pv = runtime.panel_views.view(
                source, "operations", panel, {}, "light", Window(now - 900, now), True
            )
            if runtime.panel_views.answer(source, pv).token != viewer.state["held"][panel.id]:
                continue  # a step's edge passed since the viewer asked: another window
            fresh = render_panel(
                source, panel, pv.window, "light", points, runtime.alerts.episodes, runtime.scheduler.trouble
            )
            assert orjson.loads(to_json_plotly(fresh)) == viewer.figures[panel.id], panel.id
            compared += 1
        if compared == len(dashboard.panels):
            break
    assert compared >= len(dashboard.panels)


def test_a_new_sample_redraws_exactly_the_panels_that_show_its_series(shared):
    runtime = shared.runtime
    minute = datetime.fromtimestamp(time.time() // 60 * 60, UTC)
    custom = ((minute.timestamp() - 600), (minute.timestamp() + 60))
    custom = tuple(datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M") for t in custom)
    viewer = Viewer(shared.url, "operations", panels_of(runtime, "operations"))
    assert set(viewer.refresh(custom=custom)) == set(viewer.panels)  # the first load: every figure
    assert viewer.refresh(custom=custom) == {}  # nothing new: nothing sent
    runtime.store.append([Sample(LOAD, (("period", "1m"),), 2.5, time.time())])
    sent = viewer.refresh(custom=custom)
    assert set(sent) == showing(runtime, "operations", LOAD) != set()
    runtime.store.append([Sample(CPU, (), 0.99, time.time() + 0.5)])
    assert set(viewer.refresh(custom=custom)) == showing(runtime, "operations", CPU) != set()


def test_a_patched_figure_equals_the_whole_figure_a_new_viewer_gets(shared):
    runtime = shared.runtime
    panels = panels_of(runtime, "operations")
    old = Viewer(shared.url, "operations", panels)
    old.refresh()
    for attempt in range(5):
        now = time.time()
        runtime.store.append([Sample(CPU, (), 0.5 + 0.01 * attempt, now)])
        runtime.store.append([Sample(LOAD, (("period", p),), 1.5, now) for p in ("1m", "5m", "15m")])
        sent = old.refresh()
        new = Viewer(shared.url, "operations", panels)
        new.refresh()
        if new.state["held"] == old.state["held"]:
            break  # both at the same version and window (else a step's edge passed between them)
    else:
        raise AssertionError("no two refreshes at one version in five tries")
    patches = [p for p, f in sent.items() if isinstance(f, dict) and MARK in f]
    assert patches, "the refresh sent no patch"
    for panel in panels:
        assert old.figures[panel] == new.figures[panel], panel


def test_a_refresh_after_the_first_load_is_a_few_hundred_bytes(shared):
    runtime = shared.runtime
    panels = panels_of(runtime, "operations")
    http = requests.Session()
    viewer = Viewer(shared.url, "operations", panels, http)
    viewer.refresh()
    runtime.store.append([Sample(CPU, (), 0.4, time.time())])
    body = refresh_body("operations", panels, viewer.state, 1)
    answer = http.post(
        shared.url + "/_dash-update-component", json=body, headers={"Accept-Encoding": "gzip"}, stream=True
    )
    wire = answer.raw.read(decode_content=False)
    assert answer.headers.get("Content-Encoding") == "gzip"
    sent = json.loads(gzip.decompress(wire))["response"]
    assert any(MARK in json.dumps(v) for v in sent.values())
    assert len(wire) <= 2048  # the whole figure of the CPU panel alone is larger


def test_the_cache_stays_within_its_size(tmp_path):
    runtime = Runtime(quiet_settings(dashboards__cache_size="65536"), tmp_path)
    host_history(runtime, time.time())
    with serving(runtime) as pb:
        cache = runtime.answers
        first = Viewer(pb.url, "operations", panels_of(runtime, "operations"))
        first.refresh(span="5m")
        for dashboard in ("operations", "executive", "development"):
            for span in ("15m", "1h", "6h"):
                for theme in ("light", "dark"):
                    Viewer(pb.url, dashboard, panels_of(runtime, dashboard)).refresh(span=span, theme=theme)
                    assert cache.bytes <= cache.max_bytes
                    assert cache.bytes == sum(e.size for e in cache._entries.values())
        # The first viewer's answers are gone: it gets whole figures again, equal to a new viewer's.
        runtime.store.append([Sample(CPU, (), 0.7, time.time())])
        sent = first.refresh(span="5m")
        assert sent and not any(isinstance(f, dict) and MARK in f for f in sent.values())
        again = Viewer(pb.url, "operations", first.panels)
        again.refresh(span="5m")
        if again.state["held"] == first.state["held"]:
            assert again.figures == first.figures
    runtime.archive.close()


@pytest.fixture
def levels(tmp_path):
    runtime = Runtime(
        quiet_settings(auth__enabled="true", auth__rate_limit="100000"), tmp_path, secrets=SECRETS
    )
    runtime.users.set("ops", PASSWORD, "viewer", ["operations"])
    runtime.users.set("both", PASSWORD, "viewer", ["operations", "executive"])
    now = time.time()
    host_history(runtime, now)
    runtime.store.append(Sample(REVENUE, (), 100.0 * i, now - 900 + 10 * i) for i in range(90))
    runtime.dashboard_store.create(
        {
            "id": "mixed",
            "title": "Mixed",
            "access": "operations",
            "panels": [
                {
                    "id": "cpu",
                    "title": "CPU",
                    "type": "line",
                    "queries": [{"expr": CPU}],
                    "grid": {"x": 0, "y": 0},
                },
                {
                    "id": "revenue",
                    "title": "Revenue",
                    "type": "line",
                    "queries": [{"expr": REVENUE, "agg": "rate"}],
                    "grid": {"x": 6, "y": 0},
                },
            ],
        }
    )
    with serving(runtime) as pb:
        yield pb
    runtime.archive.close()


def login(url: str, user: str) -> requests.Session:
    http = requests.Session()
    http.headers["Origin"] = url
    answer = http.post(url + "/login", data={"user": user, "password": PASSWORD}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return http


def _drawn(figure: dict) -> bool:
    return bool(figure["data"]) and not (figure["layout"].get("meta") or {}).get("empty")


def test_a_cached_answer_never_crosses_levels(levels):
    runtime = levels.runtime
    seen: dict[str, list[bool]] = {"ops": [], "both": []}
    failures = []

    def watch(user: str) -> None:
        viewer = Viewer(levels.url, "mixed", ["cpu", "revenue"], login(levels.url, user))
        try:
            for i in range(8):
                if i % 2:
                    runtime.store.append([Sample(REVENUE, (), 9000.0 + i, time.time())])
                viewer.refresh()
                seen[user].append(_drawn(viewer.figures["revenue"]))
                assert _drawn(viewer.figures["cpu"])
        except AssertionError as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=watch, args=(u,)) for u in ("ops", "both") for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert seen["both"] and all(seen["both"])  # executive data for those who may read it
    assert seen["ops"] and not any(seen["ops"])  # and never for those who may not


NET = "pulseboard_system_network_receive_bytes_total"


def test_watched_views_are_rendered_ahead_and_patched_into_what_a_fresh_render_gives(kept_longer):
    """Second after second of new samples, with a gap and a counter reset: each refresh finds its
    answer and its patch made ahead (nothing computed for it), and the figures the page then holds,
    patch after patch, are the figures a full render gives."""
    runtime, views = kept_longer.runtime, kept_longer.runtime.panel_views
    dashboard = runtime.dashboards["operations"]
    source = runtime.sources.for_caller(OPEN).pages
    points = runtime.settings.dashboards.points
    viewer = Viewer(kept_longer.url, "operations", panels_of(runtime, "operations"))
    viewer.refresh()  # the view is watched from now on
    total, compared = 5e6, 0
    for k in range(12):
        time.sleep(0.1)
        at = time.time()
        if k not in (4, 5):  # two ticks without samples: a gap
            total = 1e3 if k == 7 else total + 1e5 * (k + 1)  # the counter restarts at k = 7
            runtime.store.append(
                [
                    Sample(CPU, (), 0.3 + 0.05 * (k % 3), at),
                    Sample(LOAD, (("period", "1m"),), 1.0 + k, at),
                    Sample(NET, (("interface", "eth0"),), total, at),
                ]
            )
        if k:  # the render ahead may not have made this second yet: the refresh takes what there is
            computed = runtime.answers.computed
            viewer.refresh()
            assert runtime.answers.computed == computed  # and never renders it itself
        assert views.ahead() > 0 or k in (4, 5)
        computed = runtime.answers.computed
        viewer.refresh()
        assert runtime.answers.computed == computed, f"second {k}: a refresh had to compute"
        now = time.time()
        for panel in dashboard.panels:
            pv = views.view(source, "operations", panel, {}, "light", Window(now - 900, now), True)
            if views.answer(source, pv).token != viewer.state["held"][panel.id]:
                continue  # a step's edge passed since the refresh: another window
            fresh = render_panel(
                source, panel, pv.window, "light", points, runtime.alerts.episodes, runtime.scheduler.trouble
            )
            assert orjson.loads(to_json_plotly(fresh)) == viewer.figures[panel.id], (k, panel.id)
            compared += 1
    assert compared >= 10 * len(dashboard.panels)
