"""Build the page tree from dashboard configs: navigation bar, controls and the panel grid."""

from __future__ import annotations

from dash import dcc, html

from ingest.paths import API_PREFIX
from layouts import ids
from layouts.schema import GRID_COLUMNS, Dashboard, Panel
from query.promql.variables import substitute

TIME_RANGES = (
    ("5m", "Last 5 minutes", 300),
    ("15m", "Last 15 minutes", 900),
    ("1h", "Last hour", 3600),
    ("6h", "Last 6 hours", 21600),
    ("24h", "Last 24 hours", 86400),
    ("7d", "Last 7 days", 604800),
)
CUSTOM = "custom"
RANGE_SECONDS = {key: seconds for key, _, seconds in TIME_RANGES}
REFRESH_OPTIONS = ((0, "Off"), (1, "1 s"), (5, "5 s"), (30, "30 s"))
LOADING_FIGURE = {
    "data": [],
    "layout": {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "annotations": [
            {
                "text": "Loading…",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "font": {"color": "#9ca3af"},
            }
        ],
    },
}


def range_key(seconds: float) -> str:
    """Return the picker entry closest to a default range in seconds."""
    return min(RANGE_SECONDS, key=lambda k: abs(RANGE_SECONDS[k] - seconds))


# The pages that are not dashboards: address, title in the bar, and the least role that opens them.
TOOL_PAGES = (
    ("explore", "Explore", "analyst"),
    ("trends", "Trends", "analyst"),
    ("edit", "Edit", "editor"),
    ("alerts", "Alerts", "viewer"),
    ("admin", "Keys", "admin"),
)
TOOL_PAGE_ROLES = {f"/{page}": role for page, _, role in TOOL_PAGES}


def nav_links(dashboards: list[Dashboard], pathname: str | None = None, tools: tuple = TOOL_PAGES) -> list:
    """Return one link per dashboard and tool page, the one at ``pathname`` marked active."""
    pages = [(d.id, d.title) for d in dashboards] + [(page, title) for page, title, _ in tools]
    return [
        dcc.Link(
            title,
            href=f"/{page}",
            className="nav-link active" if pathname == f"/{page}" else "nav-link",
            id=ids.nav_link(page),
        )
        for page, title in pages
    ]


def navbar(
    dashboards: list[Dashboard], default_range: float, refresh: int, demo: bool = False
) -> html.Header:
    """Return the bar with the dashboard links, time range, refresh and theme controls."""
    badge = (
        [
            html.Span(
                "demo data",
                id=ids.DEMO_BADGE,
                className="demo-badge",
                title="A simulated shop and search service feeds the business, application and search "
                "metrics. Set demo: false in the environment's settings to turn it off.",
            )
        ]
        if demo
        else []
    )
    return html.Header(
        className="navbar",
        children=[
            html.A("Pulseboard", href="/", className="brand"),
            *badge,
            html.Nav(nav_links(dashboards), className="nav-links", id=ids.NAV_LINKS),
            html.Div(
                className="controls",
                children=[
                    html.Span(
                        id=ids.LAST_UPDATE, className="last-update", title="Time of the newest data shown"
                    ),
                    dcc.Dropdown(
                        id=ids.TIME_RANGE,
                        options=[{"label": label, "value": key} for key, label, _ in TIME_RANGES]
                        + [{"label": "Custom range (UTC)", "value": CUSTOM}],
                        value=range_key(default_range),
                        clearable=False,
                        searchable=False,
                        className="time-range",
                    ),
                    html.Div(
                        id=ids.CUSTOM_RANGE,
                        className="custom-range",
                        style={"display": "none"},
                        children=[
                            dcc.Input(
                                id=ids.CUSTOM_START,
                                type="datetime-local",
                                debounce=True,
                                placeholder="Start (UTC)",
                            ),
                            html.Span("to"),
                            dcc.Input(
                                id=ids.CUSTOM_END,
                                type="datetime-local",
                                debounce=True,
                                placeholder="End (UTC)",
                            ),
                        ],
                    ),
                    dcc.Dropdown(
                        id=ids.REFRESH,
                        options=[{"label": f"⟳ {label}", "value": value} for value, label in REFRESH_OPTIONS],
                        value=refresh,
                        clearable=False,
                        searchable=False,
                        className="refresh",
                    ),
                    html.Button(
                        "◐ Dark", id=ids.THEME_TOGGLE, className="theme-toggle", title="Switch theme"
                    ),
                ],
            ),
        ],
    )


def shell(
    dashboards: list[Dashboard], default_range: float, refresh: int, page, demo: bool = False
) -> html.Div:
    """Return the layout around every page: stores, the refresh timer, the bar and the page."""
    return html.Div(
        className="app",
        children=[
            dcc.Location(id=ids.URL),
            dcc.Store(id=ids.THEME, storage_type="local"),
            dcc.Interval(id=ids.INTERVAL, interval=max(refresh, 1) * 1000, disabled=refresh == 0),
            navbar(dashboards, default_range, refresh, demo),
            html.Div(id=ids.ALERT_BANNER, className="alert-banner"),
            html.Main(page, className="page"),
        ],
    )


def _grid_style(panel: Panel) -> dict[str, int | str]:
    g = panel.grid
    return grid_style(g.x, g.y, g.w, g.h)


def grid_style(x: int, y: int, w: int, h: int) -> dict[str, int | str]:
    """The CSS that places a panel on the 12-column grid (column x, row y, width w, height h)."""
    # At tablet width: small panels three to a row, middle ones two to a row, wide ones alone.
    narrow = 4 if w <= 2 else 6 if w <= 4 else GRID_COLUMNS
    return {"--x": x + 1, "--y": y + 1, "--w": w, "--h": h, "--wn": narrow}


def export_url(dashboard_id: str, panel_id: str | None, query: str) -> str:
    """Return the CSV link of a panel (or the zip of a dashboard) for a time range query string."""
    base = f"{API_PREFIX}/dashboards/{dashboard_id}"
    return f"{base}/panels/{panel_id}/export.csv?{query}" if panel_id else f"{base}/export.zip?{query}"


def panel_card(
    dashboard: Dashboard,
    panel: Panel,
    query: str = "range=15m",
    figure: object = LOADING_FIGURE,
) -> html.Section:
    """Return one panel: its title, a Download CSV link and a graph (``figure``, or filled by the refresh).

    A title may name the dashboard's variables (``CPU of $node``): they show the variable's title, which
    stays true whatever is chosen on the page (the panels follow the choice, the title names it)."""
    title = panel.title
    if dashboard.variables and ("$" in title or "[[" in title):
        title = substitute(title, {v.name: v.title or v.name for v in dashboard.variables})
    return html.Section(
        id=ids.panel_dom_id(dashboard.id, panel.id),
        className=f"panel panel-{panel.type}",
        style=_grid_style(panel),
        children=[
            html.Div(
                className="panel-head",
                children=[
                    html.H2(title, className="panel-title", title=panel.description or title),
                    html.A(
                        "CSV",
                        id=ids.panel_csv(dashboard.id, panel.id),
                        href=export_url(dashboard.id, panel.id, query),
                        className="panel-csv",
                        title="Download this panel's data for the time range shown, as CSV",
                    ),
                ],
            ),
            dcc.Graph(
                id=ids.panel_graph(dashboard.id, panel.id),
                figure=figure,
                className="panel-graph",
                config={"displaylogo": False, "responsive": True, "displayModeBar": False, "showTips": False},
                style={"height": "100%", "width": "100%"},
            ),
        ],
    )


def page_head(title: str, description: str, *extra) -> html.Div:
    """Return a page's heading: its title, a line saying what it shows, and any links beside them."""
    return html.Div(
        className="dashboard-head", children=[html.H1(title), html.P(description, className="muted"), *extra]
    )


ALL_VALUES = {"label": "All", "value": ""}


def variable_bar(dashboard: Dashboard, chosen: dict[str, str]) -> html.Div | None:
    """Return the dashboard's variables as selectors, opened on the values the URL chose."""
    if not dashboard.variables:
        return None
    boxes = []
    for v in dashboard.variables:
        value = chosen.get(v.name, "")
        options = [ALL_VALUES] + ([{"label": value, "value": value}] if value else [])
        boxes.append(
            html.Label(
                id=ids.variable_box(dashboard.id, v.name),
                className="variable",
                children=[
                    html.Span(v.title or v.name, className="variable-name"),
                    dcc.Dropdown(
                        id=ids.variable(dashboard.id, v.name),
                        options=options,
                        value=value,
                        clearable=False,
                        searchable=True,
                        className="variable-select",
                    ),
                ],
            )
        )
    return html.Div(boxes + [dcc.Store(id=ids.VARIABLES_URL)], className="variables")


def dashboard_page(
    dashboard: Dashboard,
    refresh: int,
    chosen: dict[str, str] | None = None,
    first: tuple[dict, dict] | None = None,
    editable: bool = False,
) -> html.Div:
    """Return a dashboard's page: a heading, its variables and its grid of panels.

    ``editable``: the viewer may change it, so the heading links to the editor.

    ``first`` is (figures by panel id, render state) when the page opens with its figures.
    """
    figures, state = first or ({}, None)
    return html.Div(
        className="dashboard",
        id=f"dashboard-{dashboard.id}",
        children=[
            dcc.Store(id=ids.PAGE_META, data={"dashboard": dashboard.id, "refresh": refresh}),
            # Which answer each panel of this page holds; a new page starts with none.
            dcc.Store(id=ids.render_state(dashboard.id), data=state),
            page_head(
                dashboard.title,
                dashboard.description,
                html.A(
                    "Download all (zip of CSV)",
                    id=ids.dashboard_zip(dashboard.id),
                    href=export_url(dashboard.id, None, "range=15m"),
                    className="dashboard-zip",
                ),
                html.A(
                    "Edit", href=f"/edit?dashboard={dashboard.id}", className="dashboard-zip dashboard-edit"
                )
                if editable
                else None,
            ),
            variable_bar(dashboard, chosen or {}),
            html.Div(
                [
                    panel_card(dashboard, p, figure=figures.get(p.id, LOADING_FIGURE))
                    for p in dashboard.panels
                ],
                className="grid",
            ),
        ],
    )
