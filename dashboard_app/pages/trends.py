"""Callbacks of the Trends page: the series list, the chart with forecasts and anomalies, the CSV link."""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode

from dash import Dash, Input, Output
from dash.exceptions import PreventUpdate

from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.analysis.csv_export import series_label
from dashboard_app.pages.dashboards import window_for
from dashboard_app.pages.panels import panel_frame
from dashboard_app.runtime import Runtime
from dashboard_app.sources.source import NotPermitted, Source
from ingest.paths import API_PREFIX
from layouts import ids
from layouts.charts import apply_theme, line, no_data
from layouts.overlays import add_forecasts, mark_anomalies
from layouts.schema import Panel, PanelQuery
from query.evaluate import Query
from query.statistics import forecast
from tsdb.aggregator import AGGREGATIONS, QueryError
from tsdb.selector import SelectorError

MAX_OPTIONS = 5000
MAX_FORECASTS = 6


def series_options(source: Source) -> list[dict]:
    """Every metric the reader may read (all its series) and each of its series, as selectors to pick."""
    names = source.names()
    options = [{"label": f"{n} (all series)", "value": n} for n in names]
    for name in names:
        if len(options) >= MAX_OPTIONS:
            break  # each name is a request when the source is a Prometheus server: stop at the cap
        for s in source.series(name):
            if s.labels:
                options.append({"label": series_label(name, s.labels), "value": series_label(name, s.labels)})
    return options[:MAX_OPTIONS]


TRENDS = Permission("analyst", "read", series="all")


def register(app: Dash, runtime: Runtime, permissions: Permissions) -> None:
    """Attach the Trends page's callbacks, with what they need declared."""

    @permissions.callback(app, TRENDS, Output(ids.TRENDS_SERIES, "options"), Input(ids.URL, "pathname"))
    def options(pathname):
        if pathname != "/trends":
            raise PreventUpdate
        return series_options(reads().pages)

    @permissions.callback(
        app,
        Permission("analyst", "read", series="input"),
        Output(ids.TRENDS_GRAPH, "figure"),
        Output(ids.TRENDS_CSV, "href"),
        Output(ids.TRENDS_NOTE, "children"),
        Input(ids.TRENDS_SERIES, "value"),
        Input(ids.TRENDS_RESOLUTION, "value"),
        Input(ids.TRENDS_AGGREGATION, "value"),
        Input(ids.TRENDS_OVERLAYS, "value"),
        Input(ids.TIME_RANGE, "value"),
        Input(ids.CUSTOM_START, "value"),
        Input(ids.CUSTOM_END, "value"),
        Input(ids.THEME, "data"),
    )
    def draw(selected, resolution, aggregation, overlays, range_value, custom_start, custom_end, theme):
        # Not on the refresh tick: an analyst reads a chosen range, and a seasonal fit costs up to a second.
        source = reads().pages
        theme = theme if theme in ("light", "dark") else "light"
        selected = [s for s in selected if isinstance(s, str) and s] if isinstance(selected, list) else []
        aggregation = aggregation if aggregation in AGGREGATIONS else "avg"
        overlays = overlays if isinstance(overlays, list) else []
        try:
            resolution = float(resolution or 0)
        except (TypeError, ValueError):
            resolution = 0.0
        placeholder = Panel(id="trends", title="Trends", type="line", queries=[PanelQuery(expr="up")])
        if not selected:
            message = "Pick one or more series above"
            return apply_theme(no_data(placeholder, message), theme), "#", ""
        window = window_for(range_value, custom_start, custom_end, time.time())
        if window is None:
            return apply_theme(no_data(placeholder, "Choose a start and an end (UTC)"), theme), "#", ""
        try:
            limit = runtime.settings.query.max_points
            return _draw(source, selected, resolution, aggregation, overlays, window, theme, limit)
        except (NotPermitted, QueryError, SelectorError) as exc:
            return apply_theme(no_data(placeholder, html.escape(str(exc))), theme), "#", ""


def _draw(source: Source, selected, resolution, aggregation, overlays, window, theme, limit: int) -> tuple:
    """Return the chart, its CSV link and its note for checked inputs."""
    wanted = float(resolution or 0) or source.min_step
    step = max(wanted, window.span / limit)
    note = ""
    if step > wanted:
        note = f"Resolution raised to {step:,.0f} s to stay under {limit:,} points per series."
    panel = Panel(
        id="trends",
        title="Trends",
        type="line",
        unit=source.unit(selected[0]) or "none",
        step=step,
        queries=[PanelQuery(expr=s, agg=aggregation) for s in selected],
    )
    # At the analyst's step and aggregation, exactly what the CSV download holds.
    frame = panel_frame(source, panel, window, limit, peaks=False)
    steps = Query("", window.start, window.end, step).aligned()  # the chart's own steps
    query = urlencode(
        [("query", s) for s in selected]
        + [
            ("start", f"{steps.start:.3f}"),
            ("end", f"{steps.end:.3f}"),
            ("step", f"{step:g}"),
            ("agg", aggregation),
        ]
    )
    href = f"{API_PREFIX}/metrics/export.csv?{query}"
    if frame.empty:
        return apply_theme(no_data(panel, "No samples in this range"), theme), href, note
    attrs = frame.attrs
    frame = frame.loc[:, ~frame.columns.duplicated()]  # a metric and one of its series, both picked
    frame.attrs = attrs
    figure = line(frame, panel)
    overlays = overlays or []
    if "forecast" in overlays:
        ts = frame.index.as_unit("ms").asi8 / 1e3
        predicted = {}
        for column in list(frame.columns)[:MAX_FORECASTS]:
            result = forecast(ts, frame[column].to_numpy(dtype=float), window.span / 4, step)
            if result is not None:
                predicted[column] = result
        if predicted:
            figure = add_forecasts(figure, frame, panel, predicted)
            methods = sorted({f"{f.method}: {f.reason}" for f in predicted.values()})
            note = " ".join([note, "Forecast " + "; ".join(methods) + "."]).strip()
    if "anomalies" in overlays:
        figure = mark_anomalies(figure, frame, panel)
    return apply_theme(figure, theme), href, note
