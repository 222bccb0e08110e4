"""The dashboard editor: pick or make a dashboard, place its panels on the grid, edit one with a preview."""

from __future__ import annotations

import time

from dash import dcc, html

from layouts import ids
from layouts.components import LOADING_FIGURE, grid_style, page_head
from layouts.drafts import QUERY_ROWS
from layouts.schema import CHART_TYPES
from tsdb.metrics import ACCESS_LEVELS, UNITS

CHART_NAMES = {
    "line": "Line",
    "area": "Area",
    "bar": "Bar",
    "pie": "Pie",
    "gauge": "Gauge",
    "stat": "Stat (big number)",
    "table": "Table",
    "heatmap": "Heatmap",
}


def _field(label: str, name: str, control, hint: str | None = None) -> html.Label:
    """A labelled control with the message about its value beside it."""
    return html.Label(
        className=f"edit-field edit-field-{name}",
        children=[
            html.Span(label, className="edit-label"),
            control,
            html.Span(hint, className="edit-hint muted") if hint else None,
            html.Span(id=ids.edit_error(name), className="edit-error", role="alert"),
        ],
    )


def _number(name: str, placeholder: str) -> dcc.Input:
    return dcc.Input(
        id=ids.edit_field(name), type="number", placeholder=placeholder, debounce=0.4, className="edit-input"
    )


def _query_row(i: int) -> html.Div:
    return html.Div(
        className="edit-query",
        children=[
            _field(
                f"Query {chr(65 + i)}",
                f"expr-{i}",
                dcc.Textarea(
                    id={"type": ids.EDIT_EXPR, "index": i},
                    placeholder="PromQL, e.g. sum by (mode) (rate(node_cpu_seconds_total[$__rate_interval]))"
                    if i == 0
                    else "another query (optional)",
                    spellCheck=False,
                    rows=2,
                    className="edit-expr",
                ),
            ),
            _field(
                "Legend",
                f"legend-{i}",
                dcc.Input(
                    id={"type": ids.EDIT_LEGEND, "index": i},
                    placeholder="{instance} {mode}",
                    debounce=0.4,
                    className="edit-input",
                ),
            ),
        ],
    )


def editor_page(dashboard: str = "", query: str = "", **_) -> html.Div:
    """Return the editor, opened on a dashboard (and a new panel drawing ``query``, from Explore)."""
    dashboard = dashboard if isinstance(dashboard, str) else ""
    query = query if isinstance(query, str) else ""
    return html.Div(
        className="dashboard editor-page",
        children=[
            page_head(
                "Edit dashboards",
                "Drag a panel to move it, its corner to resize it; click it to edit. Nothing changes for "
                "others until you save.",
            ),
            html.Div(
                className="edit-toolbar",
                children=[
                    dcc.Dropdown(
                        id=ids.EDIT_DASHBOARD,
                        value=dashboard or None,
                        clearable=False,
                        placeholder="Dashboard to edit…",
                        className="edit-dashboard",
                    ),
                    dcc.Input(
                        id=ids.EDIT_TITLE,
                        placeholder="Dashboard title",
                        debounce=0.4,
                        className="edit-input edit-title",
                    ),
                    dcc.Dropdown(
                        id=ids.EDIT_ACCESS,
                        options=[{"label": f"Level: {a}", "value": a} for a in ACCESS_LEVELS],
                        clearable=False,
                        searchable=False,
                        className="edit-access",
                    ),
                    html.Button("Save", id=ids.EDIT_SAVE, className="button primary"),
                    html.Span(id=ids.EDIT_VERSION, className="muted edit-version"),
                    html.A("Open", id=ids.EDIT_OPEN, href="#", className="button"),
                ],
            ),
            html.Div(
                className="edit-toolbar edit-toolbar-files",
                children=[
                    html.Button("New dashboard", id=ids.EDIT_NEW, className="button"),
                    html.Button("Clone", id=ids.EDIT_CLONE, className="button"),
                    dcc.ConfirmDialogProvider(
                        html.Button("Delete", className="button danger"),
                        id=ids.EDIT_DELETE,
                        message="Delete this dashboard and all its saved versions? (A shipped one goes back "
                        "to as it shipped.)",
                    ),
                    html.A("Download YAML", id=ids.EDIT_YAML, href="#", className="button"),
                    html.A("Download JSON", id=ids.EDIT_JSON, href="#", className="button"),
                    dcc.Upload(
                        html.Button("Upload YAML or JSON", className="button"),
                        id=ids.EDIT_UPLOAD,
                        accept=".yaml,.yml,.json",
                        max_size=2**21,
                    ),
                    dcc.Upload(
                        html.Button("Import Grafana dashboard", className="button"),
                        id=ids.EDIT_IMPORT,
                        accept=".json",
                        max_size=2**22,
                    ),
                ],
            ),
            html.Details(
                className="edit-paste",
                children=[
                    html.Summary("Or paste a Grafana dashboard's JSON"),
                    dcc.Textarea(id=ids.EDIT_PASTE, rows=4, spellCheck=False, className="edit-expr"),
                    html.Button("Import", id=ids.EDIT_PASTE_IMPORT, className="button"),
                ],
            ),
            html.Div(id=ids.EDIT_STATUS, className="edit-status", role="alert"),
            html.Div(id=ids.EDIT_REPORT, className="edit-report"),
            html.Div(
                className="edit-grid-bar",
                children=[
                    html.Button("Add panel", id=ids.EDIT_ADD, className="button"),
                    html.Button("Duplicate", id=ids.EDIT_DUPLICATE, className="button"),
                    html.Button("Remove", id=ids.EDIT_REMOVE, className="button danger"),
                ],
            ),
            html.Div(id=ids.EDIT_GRID, className="grid editor-grid"),
            html.Div(
                className="edit-panel",
                children=[
                    html.Div(
                        className="edit-form",
                        children=[
                            html.H2("Panel", className="edit-form-title"),
                            html.Span(id=ids.edit_error("panel"), className="edit-error", role="alert"),
                            _field(
                                "Title",
                                "title",
                                dcc.Input(id=ids.edit_field("title"), debounce=0.4, className="edit-input"),
                            ),
                            _field(
                                "Chart",
                                "type",
                                dcc.Dropdown(
                                    id=ids.edit_field("type"),
                                    options=[{"label": CHART_NAMES[t], "value": t} for t in CHART_TYPES],
                                    clearable=False,
                                    searchable=False,
                                ),
                            ),
                            *[_query_row(i) for i in range(QUERY_ROWS)],
                            _field(
                                "Unit",
                                "unit",
                                dcc.Input(
                                    id=ids.edit_field("unit"),
                                    list="edit-units",
                                    placeholder="from the metric",
                                    debounce=0.4,
                                    className="edit-input",
                                ),
                            ),
                            html.Datalist(id="edit-units", children=[html.Option(value=u) for u in UNITS]),
                            html.Div(
                                className="edit-row",
                                children=[
                                    _field("Min", "min", _number("min", "auto")),
                                    _field("Max", "max", _number("max", "auto")),
                                ],
                            ),
                            html.Div(
                                className="edit-row",
                                children=[
                                    _field("Amber at", "warn", _number("warn", "none")),
                                    _field("Red at", "crit", _number("crit", "none")),
                                    _field(
                                        "Bad when",
                                        "direction",
                                        dcc.Dropdown(
                                            id=ids.edit_field("direction"),
                                            options=[
                                                {"label": "above", "value": "above"},
                                                {"label": "below", "value": "below"},
                                            ],
                                            clearable=False,
                                            searchable=False,
                                        ),
                                    ),
                                ],
                            ),
                            html.Div(
                                className="edit-row",
                                children=[
                                    _field(
                                        "Stacking",
                                        "stack",
                                        dcc.Checklist(
                                            id=ids.edit_field("stack"),
                                            options=[{"label": " stack the series", "value": "stack"}],
                                        ),
                                    ),
                                    _field(
                                        "Several series",
                                        "several",
                                        dcc.RadioItems(
                                            id=ids.edit_field("several"),
                                            options=[
                                                {"label": " each", "value": "each"},
                                                {"label": " the worst", "value": "worst"},
                                            ],
                                            inline=True,
                                        ),
                                    ),
                                ],
                            ),
                            _field(
                                "Description",
                                "description",
                                dcc.Input(
                                    id=ids.edit_field("description"), debounce=0.4, className="edit-input"
                                ),
                            ),
                            _field(
                                "Text",
                                "text",
                                dcc.Textarea(id=ids.edit_field("text"), rows=2, className="edit-expr"),
                                "Shown in the panel when it has no query (Markdown).",
                            ),
                        ],
                    ),
                    html.Section(
                        className="panel edit-preview-panel",
                        children=[
                            html.H2("Preview", className="panel-title"),
                            dcc.Graph(
                                id=ids.EDIT_PREVIEW,
                                figure=LOADING_FIGURE,
                                className="panel-graph",
                                config={"displaylogo": False, "responsive": True, "displayModeBar": False},
                                style={"height": "100%", "width": "100%"},
                            ),
                        ],
                    ),
                ],
            ),
            html.Div(
                className="edit-variables",
                children=[
                    html.H2("Variables", className="edit-form-title"),
                    html.P(
                        "YAML, one item per choice above the panels: name (the label, or $name in queries), "
                        "title, kind (label, custom, interval), label, values_from, values, default.",
                        className="muted",
                    ),
                    dcc.Textarea(id=ids.EDIT_VARIABLES, rows=4, spellCheck=False, className="edit-expr"),
                    html.Span(id=ids.edit_error("variables"), className="edit-error", role="alert"),
                ],
            ),
            html.Div(
                className="edit-versions",
                children=[html.H2("Versions", className="edit-form-title"), html.Div(id=ids.EDIT_VERSIONS)],
            ),
            dcc.Store(id=ids.EDIT_DRAFT, data={"pending_query": query, "wanted": dashboard}),
            dcc.Store(id=ids.EDIT_LAYOUT),
        ],
    )


def editor_card(panel: dict, chosen: bool) -> html.Div:
    """One panel on the editor's grid: its title and chart, a corner to resize it."""
    grid = panel.get("grid") if isinstance(panel.get("grid"), dict) else {}
    place = [
        grid.get(k) if isinstance(grid.get(k), int) else d
        for k, d in (("x", 0), ("y", 0), ("w", 6), ("h", 3))
    ]
    style = grid_style(*place)
    attrs = {f"data-{k}": grid.get(k, d) for k, d in (("x", 0), ("y", 0), ("w", 6), ("h", 3))}
    return html.Div(
        id=ids.edit_card(panel.get("id", "")),
        className="editor-card selected" if chosen else "editor-card",
        style=style,
        title="Drag to move, drag the corner to resize, click to edit",
        **{"data-panel": panel.get("id", ""), **attrs},
        children=[
            html.Span(panel.get("title") or panel.get("id"), className="editor-card-title"),
            html.Span(panel.get("type", ""), className="editor-card-type muted"),
            html.Span("", className="editor-resize", title="Drag to resize"),
        ],
    )


def versions_table(versions: list[dict], current: int | None) -> list:
    """A dashboard's kept versions, newest first, each but the current one with Restore."""
    if not versions:
        return [html.P("Not saved yet.", className="muted")]
    rows = []
    for v in versions[:20]:
        when = (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(v["saved"])) if v.get("saved") else "as shipped"
        )
        now = v["version"] == current
        rows.append(
            html.Tr(
                [
                    html.Td(str(v["version"])),
                    html.Td(when),
                    html.Td(str(v.get("by", ""))),
                    html.Td(str(v.get("action", ""))),
                    html.Td(f"{v.get('panels', '')} panels"),
                    html.Td(
                        "current"
                        if now
                        else html.Button(
                            "Restore", id=ids.edit_restore(v["version"]), className="button small"
                        )
                    ),
                ],
                className="current" if now else None,
            )
        )
    head = html.Tr([html.Th(h) for h in ("Version", "Saved", "By", "What", "Panels", "")])
    return [html.Table([html.Thead(head), html.Tbody(rows)], className="edit-versions-table")]


def report_table(report: dict | None) -> list:
    """How a Grafana import mapped each panel, folded under a one-line summary."""
    if not report:
        return []
    rows = [
        html.Tr(
            [
                html.Td(p["title"]),
                html.Td(p["grafana_type"]),
                html.Td(p["type"] or "left out"),
                html.Td(p["note"]),
            ]
        )
        for p in report["panels"]
    ]
    summary = (
        f"Grafana import: {report['mapped']} of {len(report['panels'])} panels mapped, "
        f"{report['as_text']} shown as text, {report['left_out']} left out. Save to keep it."
    )
    return [
        html.Details(
            [
                html.Summary(summary),
                html.Table(
                    [
                        html.Thead(html.Tr([html.Th(h) for h in ("Panel", "Grafana", "Pulseboard", "How")])),
                        html.Tbody(rows),
                    ],
                    className="edit-report-table",
                ),
            ],
            open=False,
        )
    ]
