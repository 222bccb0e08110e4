"""Thin callbacks: read the controls, render the panels through the source, return figures."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import orjson
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.pages.panels import Window, narrow_panel
from dashboard_app.runtime import Runtime
from dashboard_app.sources.source import NotPermitted
from layouts import ids
from layouts.charts import apply_theme, no_data
from layouts.components import (
    ALL_VALUES,
    CUSTOM,
    RANGE_SECONDS,
    TOOL_PAGES,
    export_url,
    nav_links,
    range_key,
)
from layouts.schema import REFRESH_CHOICES

CACHE = "pulseboard_panel_cache_requests_total"
RESULTS = ("unchanged", "patch", "full")  # what a panel refresh sent: nothing, a patch, the figure
CALLBACK = "pulseboard_callback_duration_seconds"
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what a datetime-local input holds


def _parse_local(value: str | None) -> float | None:
    """Read a datetime-local input as UTC; None when empty or malformed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def export_query(range_value: str, custom_start: str | None, custom_end: str | None) -> str:
    """Return the query string that gives an export the time range the controls show."""
    if range_value == CUSTOM:
        window = window_for(range_value, custom_start, custom_end, 0.0)
        return f"start={window.start:.0f}&end={window.end:.0f}" if window else "range=15m"
    return f"range={range_value}" if range_value in RANGE_SECONDS else "range=15m"


def zoomed_span(relayout: dict | None) -> tuple[str, str] | None:
    """Return the minutes (UTC, as the custom range inputs take them) a drag across a time chart chose."""
    if not isinstance(relayout, dict):
        return None
    ends = relayout.get("xaxis.range") or [relayout.get("xaxis.range[0]"), relayout.get("xaxis.range[1]")]
    try:
        start, end = (datetime.fromisoformat(str(x).replace(" ", "T")) for x in ends)
    except (TypeError, ValueError):
        return None  # a reset (double click) or an axis that is not time
    start = start.replace(second=0, microsecond=0)
    end = end.replace(second=0, microsecond=0) + timedelta(minutes=1 if end.second or end.microsecond else 0)
    if end <= start:
        return None
    return start.strftime(LOCAL_MINUTE), end.strftime(LOCAL_MINUTE)


def window_for(
    range_value: str, custom_start: str | None, custom_end: str | None, now: float
) -> Window | None:
    """Return the window the controls select, or None for an incomplete custom range."""
    if range_value == CUSTOM:
        start, end = _parse_local(custom_start), _parse_local(custom_end)
        if start is None or end is None or end <= start:
            return None
        return Window(start, end)
    return Window(now - RANGE_SECONDS.get(range_value, 900), now)


def _variable_values(inputs: list[dict]) -> dict[str, str]:
    """Return the values of a page's variable selectors, by label name (text only)."""
    out = {}
    for item in inputs:
        name, value = item["id"]["name"], item.get("value")
        if isinstance(name, str):
            out[name] = value if isinstance(value, str) else ""
    return out


def _text(value: object) -> str | None:
    """Return an input that should be text, or None when a request sent something else."""
    return value if isinstance(value, str) else None


def page_view(dashboard_id: str, range_value, custom_start, custom_end, theme: str, chosen: dict) -> dict:
    """Return what a page's controls select, as the page sends it back with its render state."""
    return {
        "dashboard": dashboard_id,
        "range": [range_value, custom_start, custom_end],
        "theme": theme,
        "variables": chosen,
    }


def panel_answers(views, source, view: dict, panels: list, window: Window, relative: bool) -> list:
    """Return (panel, answer) for each panel of a view: from the shared answers, computed if new."""
    out = []
    for panel in panels:
        pv = views.view(source, view["dashboard"], panel, view["variables"], view["theme"], window, relative)
        out.append((panel, views.answer(source, pv, live=relative)))
    return out


def first_load(runtime: Runtime, dashboard, chosen: dict[str, str], theme: str) -> tuple[dict, dict] | None:
    """Return the figures a page opens with, and its render state, from the shared answers.

    The page then holds them at once, and the refresh it sends as it mounts finds nothing to send.
    None when the caller may not read the dashboard (the refresh then says why, panel by panel).
    """
    caller = reads()
    if not caller.identity.sees(dashboard.access):
        return None
    source = caller.pages
    range_value = range_key(runtime.settings.dashboards.default_range)
    view = page_view(dashboard.id, range_value, None, None, theme, chosen)
    panels = [narrow_panel(p, chosen, dashboard.variables) for p in dashboard.panels]
    window = window_for(range_value, None, None, time.time())
    answers = panel_answers(runtime.panel_views, source, view, panels, window, True)
    figures = {panel.id: answer.fragment for panel, answer in answers}
    return figures, {"view": view, "held": {panel.id: answer.token for panel, answer in answers}}


PANELS = Permission(dashboard="ids", series="dashboard")
SIGNED_IN = Permission()


def register(app: Dash, runtime: Runtime, permissions: Permissions) -> None:
    """Attach the callbacks of the dashboard pages and the shell, each with what it needs declared."""
    instruments = runtime.instruments
    views = runtime.panel_views
    callback = permissions.callback

    @callback(
        app,
        PANELS,
        Output({"type": ids.PANEL_GRAPH, "dashboard": ALL, "panel": ALL}, "figure"),
        Output({"type": ids.RENDER_STATE, "dashboard": ALL}, "data"),
        Output(ids.LAST_UPDATE, "children"),
        Input(ids.INTERVAL, "n_intervals"),
        Input(ids.TIME_RANGE, "value"),
        Input(ids.CUSTOM_START, "value"),
        Input(ids.CUSTOM_END, "value"),
        Input(ids.THEME, "data"),
        Input({"type": ids.VARIABLE, "dashboard": ALL, "name": ALL}, "value"),
        State({"type": ids.RENDER_STATE, "dashboard": ALL}, "data"),
    )
    def refresh_panels(_tick, range_value, custom_start, custom_end, theme, _values, held_by_page):
        source = reads().pages
        outputs = ctx.outputs_list[0]
        if not outputs or len(ctx.outputs_list[1]) != 1:
            raise PreventUpdate  # not a dashboard page (or not yet mounted)
        last = held_by_page[0] if isinstance(held_by_page, list) and held_by_page else None
        dashboard = runtime.dashboards.get(outputs[0]["id"]["dashboard"])
        if dashboard is None:
            raise PreventUpdate
        theme = theme if theme in ("light", "dark") else "light"
        # The view goes back to the page as state: only what the page itself could have sent.
        range_value, custom_start, custom_end = _text(range_value), _text(custom_start), _text(custom_end)
        chosen = dashboard.chosen(_variable_values(ctx.inputs_list[5]))
        panels = [
            narrow_panel(dashboard.panel(o["id"]["panel"]), chosen, dashboard.variables) for o in outputs
        ]
        view = page_view(dashboard.id, range_value, custom_start, custom_end, theme, chosen)
        t0 = time.perf_counter()
        now = time.time()
        window = window_for(range_value, custom_start, custom_end, now)
        if window is None:
            message = "Choose a start and an end (UTC) for the custom range"
            figures = [apply_theme(no_data(p, message), theme) for p in panels]
            return figures, [{"view": view, "held": {}}], "Custom range: choose start and end"
        # What this page holds: a panel already showing the newest answer is left as it is, one
        # holding an earlier answer of the same view gets a patch, any other the whole figure.
        held = last.get("held") if isinstance(last, dict) and last.get("view") == view else None
        held = held if isinstance(held, dict) else {}
        figures, tokens, counts = [], {}, dict.fromkeys(RESULTS, 0)
        for panel, answer in panel_answers(views, source, view, panels, window, range_value != CUSTOM):
            tokens[panel.id] = answer.token
            mine = held.get(panel.id)
            if mine == answer.token:
                figures.append(no_update)
                counts["unchanged"] += 1
                continue
            patch = views.patch(mine, answer) if mine else None
            figures.append(answer.fragment if patch is None else orjson.Fragment(patch))
            counts["full" if patch is None else "patch"] += 1
        for result, n in counts.items():
            if n:
                instruments.count(CACHE, {"result": result}, n)
        stamp = datetime.fromtimestamp(min(now, window.end), UTC).strftime("%H:%M:%S UTC")
        if counts["unchanged"] == len(panels):
            if ctx.triggered_id == ids.INTERVAL:
                raise PreventUpdate  # a tick with nothing new: nothing to send
            return figures, [no_update], f"Updated {stamp}"  # a page opened with its figures
        instruments.observe(CALLBACK, {"dashboard": dashboard.id}, time.perf_counter() - t0)
        return figures, [{"view": view, "held": tokens}], f"Updated {stamp}"

    @callback(
        app,
        SIGNED_IN,
        Output(ids.TIME_RANGE, "value"),
        Output(ids.CUSTOM_START, "value"),
        Output(ids.CUSTOM_END, "value"),
        Input({"type": ids.PANEL_GRAPH, "dashboard": ALL, "panel": ALL}, "relayoutData"),
        prevent_initial_call=True,
    )
    def zoom_to_selection(_layouts):
        """Dragging across a time chart zooms the whole page to that span, queried at the finer step."""
        span = zoomed_span(ctx.triggered[0]["value"] if ctx.triggered else None)
        if span is None:
            raise PreventUpdate
        return CUSTOM, *span

    @callback(
        app,
        Permission(dashboard="ids"),
        Output({"type": ids.PANEL_CSV, "dashboard": ALL, "panel": ALL}, "href"),
        Output({"type": ids.DASHBOARD_ZIP, "dashboard": ALL}, "href"),
        Input(ids.TIME_RANGE, "value"),
        Input(ids.CUSTOM_START, "value"),
        Input(ids.CUSTOM_END, "value"),
        Input(ids.URL, "pathname"),
        Input({"type": ids.VARIABLE, "dashboard": ALL, "name": ALL}, "value"),
    )
    def export_links(range_value, custom_start, custom_end, _path, _values):
        query = export_query(range_value, custom_start, custom_end)
        chosen = {k: v for k, v in _variable_values(ctx.inputs_list[4]).items() if v}
        if chosen:
            query += "&" + urlencode(chosen)
        panels = [export_url(o["id"]["dashboard"], o["id"]["panel"], query) for o in ctx.outputs_list[0]]
        zips = [export_url(o["id"]["dashboard"], None, query) for o in ctx.outputs_list[1]]
        return panels, zips

    @callback(
        app,
        Permission(dashboard="ids", series="dashboard"),
        Output({"type": ids.VARIABLE, "dashboard": ALL, "name": ALL}, "options"),
        Output({"type": ids.VARIABLE_BOX, "dashboard": ALL, "name": ALL}, "style"),
        Input({"type": ids.VARIABLE, "dashboard": ALL, "name": ALL}, "id"),
        State({"type": ids.VARIABLE, "dashboard": ALL, "name": ALL}, "value"),
    )
    def variable_options(variable_ids, values):
        """Fill each variable's choices from the source's label values; hide one with none to choose."""
        source = reads().pages
        options, styles = [], []
        for component, value in zip(variable_ids, values or [None] * len(variable_ids)):
            if not isinstance(component, dict):
                raise PreventUpdate
            dashboard = runtime.dashboards.get(str(component.get("dashboard")))
            found = (
                next((v for v in dashboard.variables if v.name == component.get("name")), None)
                if dashboard is not None and reads().identity.sees(dashboard.access)
                else None
            )
            try:
                if found is None:
                    names = []
                elif found.kind == "label":
                    names = found.offered(source.label_values(found.listed_label, found.values_from))
                else:
                    names = list(found.values)
            except NotPermitted:
                names = []
            if not isinstance(value, str):
                value = None
            if value and value not in names:
                names = sorted([*names, value])  # a shared link's value stays choosable, even if gone
            options.append([ALL_VALUES] + [{"label": n, "value": n} for n in names])
            styles.append({} if names else {"display": "none"})
        return options, styles

    app.clientside_callback(
        ClientsideFunction("pulseboard", "keepVariables"),
        Output(ids.VARIABLES_URL, "data"),
        Input({"type": ids.VARIABLE, "dashboard": ALL, "name": ALL}, "value"),
        State({"type": ids.VARIABLE, "dashboard": ALL, "name": ALL}, "id"),
        prevent_initial_call=True,
    )

    @callback(
        app,
        SIGNED_IN,
        Output(ids.INTERVAL, "interval"),
        Output(ids.INTERVAL, "disabled"),
        Input(ids.REFRESH, "value"),
    )
    def set_refresh(seconds):
        seconds = seconds if seconds in REFRESH_CHOICES else 0
        return max(seconds, 1) * 1000, seconds == 0

    @callback(
        app, SIGNED_IN, Output(ids.REFRESH, "value"), Input(ids.PAGE_META, "data"), prevent_initial_call=True
    )
    def page_refresh(meta):
        if not isinstance(meta, dict) or meta.get("refresh") not in REFRESH_CHOICES:
            return no_update
        return meta["refresh"]

    app.clientside_callback(
        ClientsideFunction("pulseboard", "toggleTheme"),
        Output(ids.THEME, "data"),
        Input(ids.THEME_TOGGLE, "n_clicks"),
        State(ids.THEME, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("pulseboard", "applyTheme"),
        Output(ids.THEME_TOGGLE, "children"),
        Input(ids.THEME, "data"),
    )
    app.clientside_callback(
        ClientsideFunction("pulseboard", "customRangeStyle"),
        Output(ids.CUSTOM_RANGE, "style"),
        Input(ids.TIME_RANGE, "value"),
    )

    @callback(app, SIGNED_IN, Output(ids.NAV_LINKS, "children"), Input(ids.URL, "pathname"))
    def links(pathname):
        pathname = pathname if isinstance(pathname, str) else None
        identity = reads().identity
        visible = [d for d in runtime.dashboards.values() if identity.sees(d.access)]
        tools = tuple(t for t in TOOL_PAGES if identity.at_least(t[2]))
        out = nav_links(visible, pathname, tools)
        if identity.kind == "user":
            out.append(
                html.Form(
                    html.Button(f"Log out {identity.name}", type="submit", className="nav-link logout"),
                    method="post",
                    action="/logout",
                    className="logout-form",
                )
            )
        return out
