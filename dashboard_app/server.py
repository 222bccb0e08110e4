"""Create the Dash application: one page per dashboard, the shell around them, the callbacks."""

from __future__ import annotations

import os
import sysconfig
import time
from html import escape
from pathlib import Path

import dash
from dash import Dash, html
from flask import Response, g, redirect, request

from dashboard_app.access import guard
from dashboard_app.access.permissions import ANYONE, SIGNED_IN, BadInput, Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.api import access as api_access
from dashboard_app.api import alerts as api_alerts
from dashboard_app.api import analysis as api_analysis
from dashboard_app.api import dashboards as api_dashboards
from dashboard_app.api import exports as api_export
from dashboard_app.api import metrics as api_metrics
from dashboard_app.api import system as api_system
from dashboard_app.api.exposition import render
from dashboard_app.api.frame import Api, error_response
from dashboard_app.live import channel as live
from dashboard_app.pages import admin as admin_page_callbacks
from dashboard_app.pages import alerts as alerts_page_callbacks
from dashboard_app.pages import dashboards as dashboard_callbacks
from dashboard_app.pages import editor as editor_page_callbacks
from dashboard_app.pages import explore as explore_page_callbacks
from dashboard_app.pages import trends as trends_page_callbacks
from dashboard_app.protocols import influx, otlp, query_api, remote_write
from dashboard_app.runtime import Runtime
from layouts.admin_view import admin_page
from layouts.alert_views import alerts_page
from layouts.components import TOOL_PAGE_ROLES, dashboard_page, shell
from layouts.editor_view import editor_page
from layouts.explore_view import explore_page
from layouts.trends_view import trends_page


def _assets() -> Path:
    """The pages' styles and scripts: beside the packages in a checkout, under share/ when installed."""
    candidates = [Path(__file__).resolve().parent.parent / "assets"]
    candidates += [Path(sysconfig.get_path("data", scheme)) / "share/pulseboard/assets" for scheme in SCHEMES]
    return next((path for path in candidates if (path / "pulseboard.css").is_file()), candidates[0])


SCHEMES = (sysconfig.get_default_scheme(), f"{os.name}_user")
ASSETS = _assets()
HOME = "operations"
FIXED_PAGES = (*TOOL_PAGE_ROLES, "/404")
THEME_COOKIE = "pulseboard_theme"  # the page's theme, so a page can open with its figures drawn in it


def create_app(runtime: Runtime) -> Dash:
    """Return the Dash app that serves a runtime's dashboards, its API, /metrics and the live channel."""
    settings = runtime.settings
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        title="Pulseboard",
        update_title=None,
        suppress_callback_exceptions=True,
        compress=True,  # figures are repetitive JSON: gzip makes a full refresh about a twentieth
    )

    def refresh_of(dashboard) -> int:
        return settings.dashboards.refresh if dashboard.refresh is None else dashboard.refresh

    def page(dashboard_id: str | None = None, **query):
        dashboard = runtime.dashboards.get(dashboard_id or "")
        if dashboard is None:
            return not_found(dashboard_id)
        chosen = dashboard.chosen(query)
        theme = request.cookies.get(THEME_COOKIE)
        first = dashboard_callbacks.first_load(
            runtime, dashboard, chosen, theme if theme == "dark" else "light"
        )
        who = reads().identity
        editable = who.at_least("editor") and (
            who.sees_everything or dashboard.id not in runtime.dashboard_store.shipped
        )
        return dashboard_page(
            dashboard, refresh_of(dashboard), chosen, first, editable and who.sees(dashboard.access)
        )

    def title(dashboard_id: str | None = None, **_):
        dashboard = runtime.dashboards.get(dashboard_id or "")
        return f"{dashboard.title} · Pulseboard" if dashboard else "No such dashboard · Pulseboard"

    # Fixed pages before the catch-all dashboard page: Dash matches pages in ``order``.
    dash.register_page(
        "pulseboard_alerts", path="/alerts", title="Alerts · Pulseboard", layout=alerts_page(), order=0
    )
    dash.register_page(
        "pulseboard_trends", path="/trends", title="Trends · Pulseboard", layout=trends_page(), order=1
    )
    dash.register_page(
        "pulseboard_admin", path="/admin", title="API keys · Pulseboard", layout=admin_page(), order=2
    )
    dash.register_page(
        "pulseboard_explore", path="/explore", title="Explore · Pulseboard", layout=explore_page, order=3
    )
    dash.register_page(
        "pulseboard_edit", path="/edit", title="Edit dashboards · Pulseboard", layout=editor_page, order=4
    )
    # One page for every dashboard, so those created through the API are served at once.
    dash.register_page(
        "pulseboard_dashboard", path_template="/<dashboard_id>", title=title, layout=page, order=10
    )
    dash.register_page("not_found_404", path="/404", layout=not_found(None))
    # A function, so a page load lists the dashboards made through the API since the start.
    app.layout = lambda: shell(
        list(runtime.dashboards.values()),
        settings.dashboards.default_range,
        settings.dashboards.refresh,
        dash.page_container,
        demo=runtime.demo is not None,
    )
    server = app.server
    instruments = runtime.instruments
    permissions = Permissions()
    server.extensions["pulseboard_permissions"] = permissions  # the declarations, for tests and docs
    declare_pages(permissions, app)
    guard.install(app, runtime, permissions)  # before every other hook: a refused request goes no further

    @server.before_request
    def _start():
        g.pulseboard_t0 = time.perf_counter()
        instruments.request_started()
        if request.path == "/":
            home = HOME if HOME in runtime.dashboards else next(iter(runtime.dashboards))
            return redirect(f"/{home}")
        page = request.url_rule is not None and request.url_rule.endpoint == "/<path:path>"
        if page and request.path.strip("/") not in runtime.dashboards and request.path not in FIXED_PAGES:
            # The page shell would answer anything with 200: an unknown address is a plain 404.
            body = f"No such page: {escape(request.path)}. Try <a href='/{HOME}'>Operations</a>."
            return Response(body, 404, mimetype="text/html")
        return None

    @server.teardown_request
    def _finish(exc):
        t0 = g.pop("pulseboard_t0", None)
        if t0 is None:
            return
        rule = route_name(request.url_rule.rule if request.url_rule is not None else None)
        status = getattr(g, "pulseboard_status", 500 if exc else 200)
        instruments.request_finished(rule, request.method, status, time.perf_counter() - t0)

    @server.after_request
    def _status(response):
        g.pulseboard_status = response.status_code
        return response

    api = Api(permissions, settings.ingest.max_body)
    api_metrics.add_routes(api, runtime)
    api_dashboards.add_routes(api, runtime)
    api_system.add_routes(api, runtime)
    api_alerts.add_routes(api, runtime)
    api_analysis.add_routes(api, runtime)
    api_export.add_routes(api, runtime)
    api_access.add_routes(api, runtime)
    api.attach(server)
    # Plain pages (login, refusals, 404) make browsers ask for /favicon.ico: point them at Dash's.
    server.add_url_rule("/favicon.ico", "favicon", lambda: redirect("/_favicon.ico", 301))
    permissions.route("/favicon.ico", ("GET",), ANYONE)
    # Liveness and readiness for container healthchecks and load balancers, as Prometheus answers
    # them: no login, no data, only whether the process serves (and has started collecting).
    server.add_url_rule(
        "/-/healthy", "healthy", lambda: Response("Pulseboard is Healthy.\n", mimetype="text/plain")
    )
    server.add_url_rule(
        "/-/ready",
        "ready",
        lambda: (
            Response("Pulseboard is Ready.\n", mimetype="text/plain")
            if runtime.scheduler.started
            else Response("Pulseboard is starting.\n", 503, mimetype="text/plain")
        ),
    )
    permissions.route("/-/healthy", ("GET", "HEAD"), ANYONE)
    permissions.route("/-/ready", ("GET", "HEAD"), ANYONE)
    server.add_url_rule(
        "/metrics",
        "metrics_exposition",
        lambda: render(reads().local, runtime.store.specs, request.headers.get("Accept", ""), process=True),
    )
    # Scrapers use a key with the read scope; of people, admins (it lists every level at once).
    permissions.route("/metrics", ("GET",), Permission("admin", "read", series="all"))
    live.attach(server, runtime, permissions)
    influx.add_routes(server, runtime, permissions)
    otlp.add_routes(server, runtime, permissions)
    remote_write.add_routes(server, runtime, permissions)
    query_api.add_routes(server, runtime, permissions)
    dashboard_callbacks.register(app, runtime, permissions)
    alerts_page_callbacks.register(app, runtime, permissions)
    trends_page_callbacks.register(app, runtime, permissions)
    explore_page_callbacks.register(app, runtime, permissions)
    editor_page_callbacks.register(app, runtime, permissions)
    admin_page_callbacks.register(app, runtime, permissions)

    @server.errorhandler(BadInput)
    def _bad_input(exc: BadInput):
        return error_response(str(exc), 400, exc.field)

    secure_headers(app)
    return app


def declare_pages(permissions: Permissions, app: Dash) -> None:
    """Declare what the page machinery needs: static files for anyone, pages and their setup for users."""
    for start in ("/assets/", "/_dash-component-suites/", "/_favicon.ico"):
        permissions.prefix(app.config.requests_pathname_prefix.rstrip("/") + start, ANYONE)
    for rule in ("/_dash-layout", "/_dash-dependencies", "/_reload-hash", "/"):
        permissions.route(rule, ("GET",), SIGNED_IN)
    # Every page path: a dashboard (its access level) or a tool page (its role).
    permissions.route("/<path:path>", ("GET",), Permission(dashboard="page"))
    # Each callback declares itself where it is registered; the request names it by its outputs.
    permissions.route("/_dash-update-component", ("POST",), Permission(scope=None))
    # The page router (Dash's own callback) draws the page a pathname names: its level or role.
    permissions.dash_callback(
        [dash.Output("_pages_content", "children"), dash.Output("_pages_store", "data")],
        Permission(dashboard="pathname"),
    )


def secure_headers(app: Dash) -> None:
    """Send the headers that keep pages from being framed, sniffed or fed foreign scripts."""
    policy = []  # made at the first request: Dash adds the pages' inline scripts while it sets up

    def content_policy() -> str:
        if not policy:
            policy.append(_content_policy(app))
        return policy[0]

    @app.server.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_policy())
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith("/api/") or request.path == "/metrics":
            headers["Cache-Control"] = "no-store"
        return response


def _content_policy(app: Dash) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            # Dash's own inline scripts (config, clientside callbacks) are allowed by hash, nothing else.
            "script-src 'self' " + " ".join(app.csp_hashes()),
            "style-src 'self' 'unsafe-inline'",  # Plotly and React set styles inline
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


def route_name(rule: str | None) -> str:
    """Name a URL rule for the request metrics: API paths as they are, the page machinery by its role."""
    if rule is None:
        return "unmatched"
    if rule.startswith(("/api/", "/metrics")):
        return rule
    if rule == "/_dash-update-component":
        return "dashboard refresh"
    if rule.startswith(("/_dash-component-suites", "/assets", "/_favicon")):
        return "static files"
    if rule.startswith("/_dash-"):
        return "page setup"
    return "page"


def not_found(dashboard_id: str | None) -> html.Div:
    """Return the page for an unknown dashboard."""
    return html.Div(
        [
            html.H1("No such dashboard"),
            html.P(
                [
                    f"There is no dashboard {dashboard_id!r}. " if dashboard_id else "",
                    "Pick one above, or go to ",
                    html.A("Operations", href="/operations"),
                    ".",
                ]
            ),
        ],
        className="dashboard-head not-found",
    )
