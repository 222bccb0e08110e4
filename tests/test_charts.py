"""Every chart builder in the registry: data and no data, units, thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from dashboard_app.pages.panels import Window, render_panel
from dashboard_app.sources.source import EmbeddedSource
from layouts.charts import CHARTS, NO_DATA, STATUS_COLORS, apply_theme
from layouts.charts import build_figure as build
from layouts.schema import CHART_TYPES, Panel
from layouts.units import format_value
from tsdb.metrics import Sample
from tsdb.store import Store, Tier

START = pd.Timestamp("2026-11-25 10:00", tz="UTC")


def frame(columns=("eth0", "eth1"), n=60, scale=1.0) -> pd.DataFrame:
    index = pd.date_range(START, periods=n, freq="5s", name="time")
    data = {c: scale * (np.arange(n) + 10 * i + 1) for i, c in enumerate(columns)}
    out = pd.DataFrame(data, index=index)
    out.attrs = {"window": (index[0].timestamp(), index[-1].timestamp()), "period": 150.0}
    return out


def build_figure(data: pd.DataFrame, p: Panel) -> go.Figure:
    """Build a figure and validate it as Plotly would, property by property."""
    return go.Figure(build(data, p))


def panel(kind: str, unit: str = "bytes_per_second", **extra) -> Panel:
    return Panel(id="p", title="P", type=kind, unit=unit, queries=[{"expr": "x"}], **extra)


def test_the_registry_has_the_eight_chart_types():
    assert set(CHARTS) == set(CHART_TYPES) and len(CHARTS) == 8


@pytest.mark.parametrize("kind", CHART_TYPES)
def test_every_builder_draws_data(kind):
    fig = build_figure(frame(), panel(kind))
    assert fig.data, f"{kind} drew no trace"
    assert not (fig.layout.meta or {}).get("empty")
    json.loads(pio.to_json(fig))  # serialisable for the browser


@pytest.mark.parametrize("kind", CHART_TYPES)
def test_every_builder_says_no_data_for_an_empty_frame(kind):
    empty = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    fig = build_figure(empty, panel(kind))
    assert fig.layout.meta["empty"] is True
    assert fig.layout.annotations[0].text.startswith(NO_DATA)
    assert "waiting for<br>x" in fig.layout.annotations[0].text  # names the metric that would feed it


@pytest.mark.parametrize("kind", CHART_TYPES)
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_themes_colour_the_text(kind, theme):
    fig = go.Figure(apply_theme(build(frame(), panel(kind)), theme))
    assert fig.layout.font.color == ("#e5e7eb" if theme == "dark" else "#1f2937")
    assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)"  # the page's own background shows through


def test_line_axis_shows_binary_units():
    fig = build_figure(frame(scale=3 * 2**20), panel("line"))
    assert fig.layout.yaxis.ticksuffix == " MiB/s"
    assert max(fig.data[1].y) == pytest.approx((60 + 10) * 3)


def test_ratio_axis_is_percent_from_zero_to_a_hundred():
    fig = build_figure(frame(scale=0.001), panel("line", unit="ratio"))
    assert fig.layout.yaxis.ticksuffix == "%"
    assert list(fig.layout.yaxis.range) == [0, 100]


def test_line_x_range_is_the_window_shown():
    data = frame()
    fig = build_figure(data, panel("line"))
    assert [x / 1000 for x in fig.layout.xaxis.range] == list(data.attrs["window"])


def test_thresholds_draw_lines_and_colour_bars():
    p = panel("bar", unit="ratio", thresholds={"warn": 0.5, "crit": 0.9})
    data = pd.DataFrame({"/": [0.2], "/var": [0.6], "/data": [0.95]}, index=[START])
    fig = build_figure(data, p)
    assert list(fig.data[0].marker.color) == [
        STATUS_COLORS["ok"],
        STATUS_COLORS["warn"],
        STATUS_COLORS["crit"],
    ]
    assert list(fig.data[0].text) == ["20%", "60%", "95%"]
    line = build_figure(frame(scale=0.01), panel("line", unit="ratio", thresholds={"warn": 0.5, "crit": 0.9}))
    assert len(line.layout.shapes) == 2


def test_stat_shows_latest_value_delta_against_previous_period_and_sparkline():
    data = frame(columns=("cpu",), scale=0.01)  # 0.01 .. 0.60 over 300 s, period 150 s
    fig = build_figure(data, panel("stat", unit="ratio", thresholds={"warn": 0.7, "crit": 0.9}))
    indicator = next(t for t in fig.data if t.type == "indicator")
    assert indicator.value == pytest.approx(60.0)
    assert indicator.delta.reference == pytest.approx(30.0)  # 150 s earlier
    assert indicator.number.suffix == "%"
    assert indicator.number.font.color == STATUS_COLORS["ok"]
    sparkline = next(t for t in fig.data if t.type == "scatter")
    assert len(sparkline.x) == 30  # the current period only


def test_a_series_that_stopped_reporting_leaves_the_stat_panel(clock):
    store = Store(Tier(0, 3600), 1, [Tier(60, 86400)], clock=clock)
    now = clock.now
    store.append(
        Sample("shop_queue_depth", (), 7.0, now - 1800 + i * 10) for i in range(120)
    )  # until ten minutes ago
    stat_panel = Panel.model_validate(
        {"id": "q", "title": "Queue", "type": "stat", "queries": [{"expr": "shop_queue_depth"}]}
    )
    source = EmbeddedSource(store)
    live = render_panel(source, stat_panel, Window(now - 3600, now - 600), "light", 120)
    assert next(t for t in live["data"] if t["type"] == "indicator")["value"] == 7.0  # a window it covered
    stopped = render_panel(source, stat_panel, Window(now - 3600, now), "light", 120)
    assert not any(t["type"] == "indicator" for t in stopped["data"])
    assert "Stopped reporting" in stopped["layout"]["annotations"][0]["text"]
    store.append([Sample("shop_queue_depth", (), 3.0, now)])  # it comes back
    back = render_panel(source, stat_panel, Window(now - 3600, now), "light", 120)
    assert next(t for t in back["data"] if t["type"] == "indicator")["value"] == 3.0


def test_gauge_scale_and_bands_follow_thresholds():
    data = pd.DataFrame({"mem": [0.85]}, index=[START])
    fig = build_figure(data, panel("gauge", unit="ratio", thresholds={"warn": 0.8, "crit": 0.95}))
    gauge = fig.data[0]
    assert gauge.value == pytest.approx(85.0)
    assert list(gauge.gauge.axis.range) == [0, 100]
    assert gauge.gauge.bar.color == STATUS_COLORS["warn"]


def test_table_lists_now_min_mean_max_with_units():
    fig = build_figure(frame(scale=1024), panel("table"))
    cells = fig.data[0].cells.values
    assert list(cells[0]) == ["eth0", "eth1"]
    assert cells[1][0] == "60 KiB/s" and cells[2][0] == "1 KiB/s"


def test_heatmap_has_a_row_per_series():
    fig = build_figure(
        frame(columns=("core 0", "core 1", "core 2"), scale=0.01), panel("heatmap", unit="ratio")
    )
    assert list(fig.data[0].y) == ["core 0", "core 1", "core 2"]
    assert fig.data[0].zmax == 100


def test_pie_leaves_out_zero_slices():
    data = pd.DataFrame({"500": [3.0], "404": [0.0], "502": [1.0]}, index=[START])
    fig = build_figure(data, panel("pie", unit="count"))
    assert list(fig.data[0].labels) == ["500", "502"]


@pytest.mark.parametrize(
    "value, unit, text",
    [
        (1536, "bytes", "1.5 KiB"),
        (5 * 2**30, "bytes", "5 GiB"),
        (2**20 * 12.5, "bytes_per_second", "12.5 MiB/s"),
        (0.4213, "ratio", "42.1%"),
        (0.0042, "seconds", "4.2 ms"),
        (0.000042, "seconds", "42 µs"),
        (3.5, "seconds", "3.5 s"),
        (7200, "seconds", "2 h"),
        (259200, "seconds", "3 d"),
        (1234.5, "currency", "$1,234.50"),
        (1500, "per_second", "1.5k/s"),
        (42, "count", "42"),
        (float("nan"), "bytes", "–"),
    ],
)
def test_values_are_shown_with_units(value, unit, text):
    assert format_value(value, unit) == text


def test_a_pause_in_the_data_breaks_the_line_instead_of_bridging_it():
    data = frame(columns=("cpu",), n=40)
    data = data.drop(data.index[10:30])  # 100 s with no samples, e.g. Pulseboard was stopped
    fig = build_figure(data, panel("line"))
    y = list(fig.data[0].y)
    assert [i for i, v in enumerate(y) if v is None or v != v] == [10, 11]  # the break between the two runs
    assert len(y) == 22


def test_steady_data_has_no_breaks():
    fig = build_figure(frame(columns=("cpu",)), panel("line"))
    assert all(v == v for v in fig.data[0].y)


def test_an_area_with_a_pause_is_drawn_as_separate_fills():
    data = frame(columns=("memory",), n=40)
    data = data.drop(data.index[10:30])
    fig = build_figure(data, panel("area", unit="bytes"))
    assert [len(t.x) for t in fig.data] == [10, 10]
    assert [t.showlegend for t in fig.data] == [True, False]
    assert fig.data[0].line.color == fig.data[1].line.color


def _hosts(a: float, b: float) -> pd.DataFrame:
    index = pd.date_range("2026-01-01", periods=10, freq="5s", tz="UTC")
    return pd.DataFrame({"host-a": np.full(10, a), "host-b": np.full(10, b)}, index=index)


@pytest.mark.parametrize("kind", ["stat", "gauge"])
def test_a_status_panel_over_several_hosts_shows_each_with_its_own_colour(kind):
    panel = Panel(
        id="cpu",
        title="CPU",
        type=kind,
        unit="ratio",
        thresholds={"warn": 0.75, "crit": 0.9},
        queries=[{"expr": "x"}],
    )
    figure = build(_hosts(0.5, 0.95), panel)
    go.Figure(figure)  # a valid Plotly figure
    indicators = [t for t in figure["data"] if t["type"] == "indicator"]
    assert [round(t["value"]) for t in indicators] == [50, 95]
    colours = [
        (t.get("gauge", {}).get("bar", {}).get("color") if kind == "gauge" else t["number"]["font"]["color"])
        for t in indicators
    ]
    assert colours == [STATUS_COLORS["ok"], STATUS_COLORS["crit"]]  # the red second host shows red
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    assert titles == ["host-a", "host-b"]
    # Asked for the worst, it shows that one host and says which of how many.
    worst = build(_hosts(0.5, 0.95), panel.model_copy(update={"several": "worst"}))
    [indicator] = [t for t in worst["data"] if t["type"] == "indicator"]
    assert round(indicator["value"]) == 95
    assert any("host-b (worst of 2)" in a["text"] for a in worst["layout"]["annotations"])
    # Where low is bad, the worst is the lowest.
    low_bad = Panel.model_validate(
        {
            **panel.model_dump(),
            "several": "worst",
            "thresholds": {"warn": 0.3, "crit": 0.1, "direction": "below"},
        }
    )
    [indicator] = [t for t in build(_hosts(0.5, 0.05), low_bad)["data"] if t["type"] == "indicator"]
    assert round(indicator["value"]) == 5


def test_min_max_and_stacking_reach_the_figure():
    index = pd.date_range("2026-01-01", periods=4, freq="5s", tz="UTC")
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 1, 1, 1]}, index=index)
    panel = Panel(id="p", title="P", type="area", stack=True, min=-1, max=10, queries=[{"expr": "x"}])
    figure = build(frame, panel)
    go.Figure(figure)
    assert {t["stackgroup"] for t in figure["data"]} == {"stack"}
    assert figure["layout"]["yaxis"]["range"] == [-1, 10]
    only_min = build(frame, panel.model_copy(update={"max": None, "stack": False}))
    assert only_min["layout"]["yaxis"]["autorangeoptions"] == {"minallowed": -1}


def test_a_text_panel_shows_its_text():
    panel = Panel(
        id="note", title="Runbook", type="stat", queries=[], text="# Runbook\nCall **on-call** <b>now</b>"
    )
    figure = build(pd.DataFrame(), panel)
    text = figure["layout"]["annotations"][0]["text"]
    assert text == "Runbook<br>Call on-call &lt;b&gt;now&lt;/b&gt;"
    with pytest.raises(ValueError, match="at least one query, or a text"):
        Panel(id="empty", title="Empty", type="line", queries=[])
