"""Thin callbacks of the Explore page: completion, the error's place, the graph and table, CSV, history."""

from __future__ import annotations

import html as markup
import time
from urllib.parse import parse_qs, urlencode

import pandas as pd
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.pages.dashboards import window_for
from dashboard_app.pages.panels import Window, query_frame, query_panel
from dashboard_app.runtime import Runtime
from dashboard_app.sources.source import NotPermitted, Source, SourceUnavailable
from ingest.paths import API_PREFIX
from layouts import ids
from layouts.charts import apply_theme, build_figure, no_data
from layouts.components import CUSTOM, RANGE_SECONDS
from layouts.schema import Panel
from layouts.units import format_value
from query.promql.completion import complete, locate
from query.promql.values import BadData, Execution, Timeout
from tsdb.aggregator import QueryError

EXPLORE = Permission("analyst", "read")  # the page's own state: the query text, its history
READS = Permission("analyst", "read", series="all")  # completion and the graph: through the caller's source
POINTS = 600  # points per series Explore draws: a step of 6 s over an hour
HISTORY = 20  # queries kept in a browser's history
PAGE = "/explore"
# What Explore shows while there is nothing to draw, with the reason.
PLACEHOLDER = Panel(id="explore", title="Explore", type="line", queries=[], text="")


def step_for(source: Source, window: Window) -> float:
    """The step Explore draws a window at (whole seconds, never finer than the source keeps)."""
    return float(max(round(window.span / POINTS), source.min_step, 1))


def _table(frame: pd.DataFrame, unit: str) -> html.Table:
    rows = []
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty:
            continue
        rows.append(
            html.Tr(
                [
                    html.Td(str(column), className="series"),
                    html.Td(format_value(float(values.iloc[-1]), unit)),
                    html.Td(format_value(float(values.min()), unit)),
                    html.Td(format_value(float(values.mean()), unit)),
                    html.Td(format_value(float(values.max()), unit)),
                ]
            )
        )
    head = html.Tr([html.Th(h) for h in ("Series", "Last", "Min", "Mean", "Max")])
    return html.Table([html.Thead(head), html.Tbody(rows)], className="explore-results")


def register(app: Dash, runtime: Runtime, permissions: Permissions) -> None:
    """Attach the Explore page's callbacks, with what they need declared."""
    callback = permissions.callback

    @callback(
        app,
        READS,
        Output(ids.EXPLORE_SUGGESTIONS, "children"),
        Output(ids.EXPLORE_SUGGESTED, "data"),
        Output(ids.EXPLORE_ERROR, "children"),
        Input(ids.EXPLORE_QUERY, "value"),
    )
    def suggest(text):
        """Offer names that fit where the text ends, and say where a wrong text goes wrong."""
        text = text if isinstance(text, str) else ""
        source = reads().pages
        cache: dict = {}

        def names():
            if "names" not in cache:
                cache["names"] = source.names()
            return cache["names"]

        def known(metric: str | None) -> str | None:
            if "known" not in cache:
                cache["known"] = set(names())
            return metric if metric in cache["known"] else None  # a word that is no metric: all series

        def labels(metric):
            return source.label_names(known(metric))

        def values(label, metric):
            return source.label_values(label, known(metric))

        try:
            offered = complete(text, names, labels, values)
        except (NotPermitted, SourceUnavailable):
            offered = []
        buttons = [
            html.Button(
                [
                    html.Span(s.text, className="suggestion-text"),
                    html.Span(s.kind, className="suggestion-kind"),
                ],
                id=ids.explore_suggestion(i),
                className=f"suggestion suggestion-{s.kind}",
                role="option",
            )
            for i, s in enumerate(offered)
        ]
        error = None
        if text.strip():
            problem = locate(text)
            if problem is not None:
                line_start = text.rfind("\n", 0, problem.at) + 1
                line_end = text.find("\n", problem.at)
                line = text[line_start : None if line_end < 0 else line_end]
                column = problem.at - line_start
                error = [
                    html.Strong(f"Line {text.count(chr(10), 0, problem.at) + 1}, column {column + 1}: "),
                    html.Span(problem.message),
                    html.Pre(line + "\n" + " " * column + "^", className="explore-caret"),
                ]
        return buttons, [{"text": s.text, "start": s.start} for s in offered], error

    @callback(
        app,
        EXPLORE,
        Output(ids.EXPLORE_QUERY, "value"),
        Input({"type": ids.EXPLORE_SUGGESTION, "index": ALL}, "n_clicks"),
        Input({"type": ids.EXPLORE_HISTORY_ITEM, "index": ALL}, "n_clicks"),
        State(ids.EXPLORE_QUERY, "value"),
        State(ids.EXPLORE_SUGGESTED, "data"),
        State(ids.EXPLORE_HISTORY, "data"),
        prevent_initial_call=True,
    )
    def put_in(_suggestions, _history, text, suggested, history):
        """Put a chosen suggestion in place of the word it completes, or a query from the history."""
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict) or not (ctx.triggered and ctx.triggered[0]["value"]):
            raise PreventUpdate
        index = trigger.get("index")
        if not isinstance(index, int):
            raise PreventUpdate
        if trigger.get("type") == ids.EXPLORE_HISTORY_ITEM:
            if (
                not isinstance(history, list)
                or not 0 <= index < len(history)
                or not isinstance(history[index], str)
            ):
                raise PreventUpdate
            return history[index]
        text = text if isinstance(text, str) else ""
        if not isinstance(suggested, list) or not 0 <= index < len(suggested):
            raise PreventUpdate
        chosen = suggested[index]
        if not isinstance(chosen, dict) or not isinstance(chosen.get("text"), str):
            raise PreventUpdate
        start = chosen.get("start") if isinstance(chosen.get("start"), int) else len(text)
        return text[: max(0, min(start, len(text)))] + chosen["text"]

    @callback(
        app,
        READS,
        Output(ids.EXPLORE_GRAPH, "figure"),
        Output(ids.EXPLORE_TABLE, "children"),
        Output(ids.EXPLORE_DRAWN, "data"),
        Output(ids.EXPLORE_NOTE, "children"),
        Output(ids.EXPLORE_ADD, "href"),
        Output(ids.EXPLORE_CSV, "href"),
        Input(ids.EXPLORE_QUERY, "value"),
        Input(ids.EXPLORE_RUN, "n_clicks"),
        Input(ids.TIME_RANGE, "value"),
        Input(ids.CUSTOM_START, "value"),
        Input(ids.CUSTOM_END, "value"),
        Input(ids.THEME, "data"),
    )
    def draw(text, _run, range_value, custom_start, custom_end, theme):
        """Draw the query once it is PromQL: the graph, the table, and what the CSV will hold."""
        theme = theme if theme in ("light", "dark") else "light"
        text = text.strip() if isinstance(text, str) else ""
        if not text:
            figure = apply_theme(no_data(PLACEHOLDER, "Type a query above"), theme)
            return figure, None, None, "", "/edit", None
        if locate(text) is not None:
            raise PreventUpdate  # the error shows beside the text; the last graph stays
        source = reads().pages
        range_value = range_value if isinstance(range_value, str) else "1h"
        window = window_for(range_value, custom_start, custom_end, time.time())
        if window is None:
            figure = apply_theme(no_data(PLACEHOLDER, "Choose a start and an end (UTC)"), theme)
            return figure, None, None, "", no_update, None
        step = step_for(source, window)
        started = time.perf_counter()
        try:
            panel = query_panel(source, text)
            frame = query_frame(source, panel.queries[0], window.start, window.end, step)
        except (ValueError, NotPermitted, SourceUnavailable, BadData, Execution, Timeout, QueryError) as exc:
            reason = markup.escape(str(exc).removeprefix('invalid parameter "query": '))
            figure = apply_theme(
                no_data(
                    PLACEHOLDER, f"Cannot draw this query<br><span style='font-size:11px'>{reason}</span>"
                ),
                theme,
            )
            return figure, None, None, "", no_update, None
        took = time.perf_counter() - started
        drawn = {"query": text, "start": window.start, "end": window.end, "step": step, "range": range_value}
        if range_value == CUSTOM:
            drawn.update(custom_start=custom_start, custom_end=custom_end)
        add = "/edit?" + urlencode({"query": text})
        csv = f"{API_PREFIX}/explore/export.csv?" + urlencode(
            {"query": text, "start": f"{window.start:.3f}", "end": f"{window.end:.3f}", "step": f"{step:g}"}
        )
        if frame.empty:
            figure = apply_theme(no_data(panel, "No series match this query in the time range"), theme)
            return (
                figure,
                html.P("No series", className="muted"),
                drawn,
                f"0 series · step {step:g} s",
                add,
                csv,
            )
        figure = apply_theme(build_figure(frame, panel), theme)
        series = len(frame.columns)
        drawn["series"] = series
        note = f"{series} series · step {step:g} s · {len(frame):,} points each · {took * 1000:.0f} ms"
        return figure, _table(frame, panel.unit or "none"), drawn, note, add, csv

    @callback(
        app,
        Permission(),  # fires on every page (the bar is on every page); acts on /explore only
        Output(ids.TIME_RANGE, "value", allow_duplicate=True),
        Output(ids.CUSTOM_START, "value", allow_duplicate=True),
        Output(ids.CUSTOM_END, "value", allow_duplicate=True),
        Input(ids.URL, "pathname"),
        State(ids.URL, "search"),
        prevent_initial_call="initial_duplicate",
    )
    def range_from_address(pathname, search):
        """A shared Explore link opens on the range it was drawn at."""
        if pathname != PAGE or not isinstance(search, str):
            raise PreventUpdate
        params = parse_qs(search.lstrip("?"))
        wanted = (params.get("range") or [""])[0]
        if wanted == CUSTOM:
            start, end = (params.get("start") or [""])[0], (params.get("end") or [""])[0]
            if window_for(CUSTOM, start, end, 0) is None:
                raise PreventUpdate
            return CUSTOM, start, end
        if wanted not in RANGE_SECONDS:
            raise PreventUpdate
        return wanted, no_update, no_update

    app.clientside_callback(
        ClientsideFunction("pulseboard", "exploreView"),
        Output(ids.EXPLORE_GRAPH, "style"),
        Output(ids.EXPLORE_TABLE, "style"),
        Input(ids.EXPLORE_VIEW, "value"),
    )
    app.clientside_callback(
        ClientsideFunction("pulseboard", "keepExplore"),
        Output(ids.EXPLORE_ADDRESS, "data"),
        Input(ids.EXPLORE_DRAWN, "data"),
        prevent_initial_call=True,
    )

    @callback(
        app,
        EXPLORE,
        Output(ids.EXPLORE_HISTORY, "data"),
        Input(ids.EXPLORE_DRAWN, "data"),
        State(ids.EXPLORE_HISTORY, "data"),
        prevent_initial_call=True,
    )
    def remember(drawn, history):
        """Keep the queries drawn that found series, newest first, each once."""
        if not isinstance(drawn, dict) or not isinstance(drawn.get("query"), str) or not drawn.get("series"):
            raise PreventUpdate
        history = [h for h in history if isinstance(h, str)] if isinstance(history, list) else []
        if history and history[0] == drawn["query"]:
            raise PreventUpdate
        # A query counts once the typing paused on it: drawn queries that only extend the last are merged.
        if history and drawn["query"].startswith(history[0]):
            history = history[1:]
        return [drawn["query"], *[h for h in history if h != drawn["query"]]][:HISTORY]

    @callback(app, EXPLORE, Output(ids.EXPLORE_HISTORY_LIST, "children"), Input(ids.EXPLORE_HISTORY, "data"))
    def history_list(history):
        history = [h for h in history if isinstance(h, str)] if isinstance(history, list) else []
        if not history:
            return [html.Li("Queries you draw are kept here, in this browser.", className="muted")]
        return [
            html.Li(html.Button(h, id=ids.explore_history_item(i), className="history-item", title=h))
            for i, h in enumerate(history)
        ]
