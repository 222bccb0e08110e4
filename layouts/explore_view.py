"""The Explore page: type PromQL with completion, see it as a graph or a table, share it, keep it."""

from __future__ import annotations

from dash import dcc, html

from layouts import ids
from layouts.components import LOADING_FIGURE, page_head

VIEWS = (("graph", "Graph"), ("table", "Table"))


def explore_page(query: str = "", **_) -> html.Div:
    """Return the Explore page, opened on the query its address names."""
    query = query if isinstance(query, str) else ""
    return html.Div(
        className="dashboard explore-page",
        children=[
            page_head(
                "Explore",
                "Type a PromQL query: names complete as you type (Tab takes the first), the graph follows; "
                "the time range is the one in the bar above.",
            ),
            html.Div(
                className="explore-editor",
                children=[
                    dcc.Textarea(
                        id=ids.EXPLORE_QUERY,
                        value=query,
                        placeholder='e.g. rate(node_cpu_seconds_total{mode!="idle"}[$__rate_interval])',
                        spellCheck=False,
                        autoFocus=True,
                        className="explore-query",
                        rows=3,
                    ),
                    html.Div(
                        className="explore-actions",
                        children=[
                            html.Button(
                                "Run", id=ids.EXPLORE_RUN, className="button primary", title="Ctrl+Enter"
                            ),
                            html.A("Add to dashboard", id=ids.EXPLORE_ADD, href="/edit", className="button"),
                            html.A(
                                "Download CSV",
                                id=ids.EXPLORE_CSV,
                                className="button",
                                title="What the graph draws",
                            ),
                        ],
                    ),
                ],
            ),
            html.Div(id=ids.EXPLORE_SUGGESTIONS, className="explore-suggestions", role="listbox"),
            dcc.Store(id=ids.EXPLORE_SUGGESTED, data=[]),
            html.Div(id=ids.EXPLORE_ERROR, className="explore-error", role="alert"),
            html.Div(
                className="explore-view-bar",
                children=[
                    dcc.RadioItems(
                        id=ids.EXPLORE_VIEW,
                        options=[{"label": label, "value": key} for key, label in VIEWS],
                        value="graph",
                        inline=True,
                        className="explore-view",
                    ),
                    html.Span(id=ids.EXPLORE_NOTE, className="muted explore-note"),
                ],
            ),
            html.Section(
                className="panel explore-panel",
                children=[
                    dcc.Graph(
                        id=ids.EXPLORE_GRAPH,
                        figure=LOADING_FIGURE,
                        className="panel-graph",
                        config={"displaylogo": False, "responsive": True},
                        style={"height": "100%", "width": "100%"},
                    ),
                    html.Div(id=ids.EXPLORE_TABLE, className="explore-table", style={"display": "none"}),
                ],
            ),
            html.H2("Your recent queries", className="explore-history-title"),
            html.Ul(id=ids.EXPLORE_HISTORY_LIST, className="explore-history"),
            dcc.Store(id=ids.EXPLORE_HISTORY, storage_type="local", data=[]),
            dcc.Store(id=ids.EXPLORE_DRAWN),
            dcc.Store(id=ids.EXPLORE_ADDRESS),
        ],
    )
