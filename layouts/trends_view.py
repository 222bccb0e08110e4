"""The analyst's Trends page: pick series, resolution and aggregation; see forecasts and anomalies; export."""

from __future__ import annotations

from dash import dcc, html

from layouts import ids
from layouts.components import LOADING_FIGURE, page_head
from tsdb.aggregator import AGGREGATIONS

RESOLUTIONS = (("raw", 0), ("1 min", 60), ("5 min", 300), ("1 h", 3600), ("1 day", 86400))


def trends_page() -> html.Div:
    """Return the Trends page; a callback fills the series list and draws the chart."""
    return html.Div(
        className="dashboard trends-page",
        children=[
            page_head("Trends", "Pick series and a resolution; the time range is the one in the bar above."),
            html.Div(
                className="trends-controls",
                children=[
                    dcc.Dropdown(
                        id=ids.TRENDS_SERIES,
                        multi=True,
                        searchable=True,
                        placeholder="Search metrics and labels…",
                        className="trends-series",
                    ),
                    dcc.Dropdown(
                        id=ids.TRENDS_RESOLUTION,
                        options=[{"label": f"Resolution: {label}", "value": v} for label, v in RESOLUTIONS],
                        value=60,
                        clearable=False,
                        searchable=False,
                        className="trends-resolution",
                    ),
                    dcc.Dropdown(
                        id=ids.TRENDS_AGGREGATION,
                        options=[{"label": f"Aggregation: {a}", "value": a} for a in AGGREGATIONS],
                        value="avg",
                        clearable=False,
                        searchable=False,
                        className="trends-aggregation",
                    ),
                    dcc.Checklist(
                        id=ids.TRENDS_OVERLAYS,
                        options=[
                            {"label": " forecast", "value": "forecast"},
                            {"label": " anomalies", "value": "anomalies"},
                        ],
                        value=["forecast", "anomalies"],
                        inline=True,
                        className="trends-overlays",
                    ),
                    html.A("Download CSV", id=ids.TRENDS_CSV, href="#", className="dashboard-zip trends-csv"),
                ],
            ),
            html.Section(
                className="panel trends-panel",
                children=[
                    html.P(id=ids.TRENDS_NOTE, className="muted trends-note"),
                    dcc.Graph(
                        id=ids.TRENDS_GRAPH,
                        figure=LOADING_FIGURE,
                        className="panel-graph",
                        config={"displaylogo": False, "responsive": True},
                        style={"height": "100%", "width": "100%"},
                    ),
                ],
            ),
        ],
    )
