"""Create the Dash application: one page per dashboard, the shell around them, the callbacks."""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Dash, html
from flask import redirect, request

from dashboard_app import callbacks
from dashboard_app.runtime import Runtime
from layouts.components import dashboard_page, shell

ASSETS = Path(__file__).resolve().parent.parent / "assets"
HOME = "operations"


def create_app(runtime: Runtime) -> Dash:
    """Return the Dash app that serves a runtime's dashboards."""
    settings = runtime.settings
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        title="Pulseboard",
        update_title=None,
        suppress_callback_exceptions=True,
    )
    dashboards = list(runtime.dashboards.values())
    for dashboard in dashboards:
        refresh = settings.dashboards.refresh if dashboard.refresh is None else dashboard.refresh
        dash.register_page(
            f"pulseboard_{dashboard.id}",
            path=f"/{dashboard.id}",
            name=dashboard.title,
            title=f"{dashboard.title} · Pulseboard",
            layout=dashboard_page(dashboard, refresh),
        )
    dash.register_page(
        "not_found_404",
        path="/404",
        layout=html.Div(
            [
                html.H1("No such dashboard"),
                html.P(["Pick one above, or go to ", html.A("Operations", href="/operations"), "."]),
            ],
            className="dashboard-head not-found",
        ),
    )
    app.layout = shell(
        dashboards, settings.dashboards.default_range, settings.dashboards.refresh, dash.page_container
    )
    home = HOME if HOME in runtime.dashboards else dashboards[0].id

    @app.server.before_request
    def _home():
        if request.path == "/":
            return redirect(f"/{home}")
        return None

    callbacks.register(app, runtime)
    return app
