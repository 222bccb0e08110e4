"""Every request passes here first: who is asking, may they, not too often, and a note of every write.

Checks run before Dash or an endpoint sees the request, so a refused callback or export never runs.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections import defaultdict
from urllib.parse import urlsplit

from dash import Dash
from flask import Response, g, redirect, request, session
from flask.sessions import SecureCookieSessionInterface

from collectors.selector import SelectorError, parse_selector
from dashboard_app.api import PREFIX, error_response
from dashboard_app.auth import OPEN, Identity
from dashboard_app.runtime import Runtime
from layouts.components import TOOL_PAGE_ROLES

PUBLIC = ("/login", "/logout", "/_favicon.ico", "/favicon.ico", "/assets/", "/_dash-component-suites/")
DASH_INTERNAL = ("/_dash-layout", "/_dash-dependencies", "/_dash-update-component", "/_reload-hash")
# Which access level a metric belongs to, by name: the dashboards that show it.
METRIC_LEVELS = (
    (("pulseboard_business_",), "executive"),
    (("pulseboard_system_", "pulseboard_collector_", "up"), "operations"),
    (
        (
            "pulseboard_rag_",
            "pulseboard_app_",
            "pulseboard_http_",
            "pulseboard_callback_",
            "pulseboard_panel_",
            "pulseboard_process_",
            "pulseboard_store_",
            "pulseboard_live_",
        ),
        "development",
    ),
)
# POSTs that change no setting: pushed samples (data, not configuration), queries and backtests (reads).
NOT_WRITES = ("/metrics/custom/record", "/metrics/query", "/backtest")
CATEGORY_LEVELS = {"business": "executive", "rag": "development", "application": "development"}


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _TlsAwareSessions(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app) -> bool:
        return request.is_secure


class RateLimiter:
    """A fixed one-minute window per identity; answers how many seconds to wait when over."""

    def __init__(self, per_minute: int, clock=time.time):
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
        self._lock = threading.Lock()

    def hit(self, who: str) -> int:
        now = self.clock()
        minute = int(now // 60)
        with self._lock:
            window, count = self._windows[who]
            if window != minute:
                window, count = minute, 0
            count += 1
            self._windows[who] = (window, count)
            if len(self._windows) > 100_000:
                self._windows = defaultdict(
                    lambda: (0, 0), {k: v for k, v in self._windows.items() if v[0] == minute}
                )
        return 0 if count <= self.per_minute else int((minute + 1) * 60 - now) + 1


def metric_level(runtime: Runtime, name: str) -> str | None:
    """Return the access level a metric belongs to (None: any viewer may read it)."""
    for prefixes, level in METRIC_LEVELS:
        if any(name == p or name.startswith(p) for p in prefixes):
            return level
    definition = runtime.metrics.definitions.get(name)
    return CATEGORY_LEVELS.get(definition.category) if definition else None


def install(app: Dash, runtime: Runtime) -> None:
    """Put the checks in front of every route of the app's server."""
    server = app.server
    cfg = runtime.settings.auth
    limiter = RateLimiter(cfg.rate_limit)
    logins = RateLimiter(cfg.login_rate_limit)

    if cfg.enabled:
        server.secret_key = runtime.secrets.secret_key
        server.session_interface = _TlsAwareSessions()
        server.config.update(
            SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_NAME="pulseboard"
        )
        server.add_url_rule("/login", "login", lambda: _login(runtime, logins), methods=["GET", "POST"])
        server.add_url_rule("/logout", "logout", _logout, methods=["GET", "POST"])

    @server.before_request
    def _guard():
        g.identity = OPEN
        if not cfg.enabled:
            return None
        path = request.path
        if path == "/login" or path.startswith(PUBLIC):
            return None
        try:
            if "api_key" in request.args or "token" in request.args:
                raise Refused(
                    400, "API keys go in a header (Authorization: Bearer or X-API-Key), never in a URL"
                )
            identity = _identify(runtime)
            if identity is None:
                if _is_page(path):
                    return redirect(f"/login?next={path}")
                raise Refused(401, "log in, or send an API key in Authorization: Bearer or X-API-Key")
            g.identity = identity
            wait = limiter.hit(identity.name)
            if wait:
                return error_response(
                    f"more than {cfg.rate_limit} requests a minute; slow down", 429, retry_after=wait
                )
            _check_origin(identity)
            _authorize(runtime, identity, path)
        except Refused as exc:
            if path.startswith("/api/") or path in DASH_INTERNAL or path == "/metrics":
                return error_response(str(exc), exc.status)
            return Response(html.escape(str(exc)), exc.status, mimetype="text/plain")
        return None

    @server.after_request
    def _audit(response):
        if request.method in ("POST", "PUT", "DELETE") and request.path.startswith(PREFIX):
            if not request.path.endswith(NOT_WRITES):
                who = getattr(g, "identity", OPEN).name
                runtime.audit.write(
                    who, request.method, request.path, request.remote_addr or "", response.status_code
                )
        return response


def _is_page(path: str) -> bool:
    return not path.startswith(("/api/", "/_dash", "/metrics"))


def _identify(runtime: Runtime) -> Identity | None:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("X-API-Key")
    if token:
        identity = runtime.keys.identify(token)
        if identity is None:
            raise Refused(401, "that API key is unknown, revoked or expired")
        return identity
    name = session.get("user")
    if not name:
        return None
    now = runtime.clock()
    cfg = runtime.settings.auth
    if now - session.get("login", 0) > cfg.session_max or now - session.get("seen", 0) > cfg.session_idle:
        session.clear()
        return None
    session["seen"] = now
    return runtime.users.identity(name)


def _check_origin(identity: Identity) -> None:
    """Refuse a state-changing request made with a session cookie from another site (CSRF)."""
    if identity.kind != "user" or request.method not in ("POST", "PUT", "DELETE", "PATCH"):
        return
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or urlsplit(source).netloc != request.host:
        raise Refused(403, "a change made with a login must come from Pulseboard's own pages (Origin check)")


def _dashboard_level(runtime: Runtime, dashboard_id: str) -> str | None:
    dashboard = runtime.dashboards.get(dashboard_id)
    return dashboard.access if dashboard else None


def _need_dashboard(runtime: Runtime, identity: Identity, dashboard_id: str) -> None:
    level = _dashboard_level(runtime, dashboard_id)
    if level is not None and not identity.sees(level):
        raise Refused(403, f"{identity.name} may not see the {level} dashboards")


def _need(identity: Identity, role: str | None = None, scope: str | None = None) -> None:
    if identity.kind == "key":
        if scope is None or (scope not in identity.scopes and "admin" not in identity.scopes):
            scopes = ", ".join(identity.scopes)
            raise Refused(
                403, f"this key's scopes ({scopes}) do not allow this; it needs {scope or 'a login'}"
            )
        return
    if role is not None and not identity.at_least(role):
        raise Refused(403, f"{identity.name} is a {identity.role}; this needs a {role}")


def _need_metric(runtime: Runtime, identity: Identity, selector: str) -> None:
    try:
        name = parse_selector(selector).name
    except SelectorError:
        return  # the endpoint answers a malformed selector with its 400
    level = metric_level(runtime, name)
    if level is not None and not identity.sees(level):
        raise Refused(403, f"{name} belongs to the {level} dashboards, which {identity.name} may not see")


def _authorize(runtime: Runtime, identity: Identity, path: str) -> None:
    method = request.method
    if path.startswith(PREFIX):
        _authorize_api(runtime, identity, path[len(PREFIX) :], method)
    elif path == "/metrics":
        _need(identity, "admin", "read")
    elif path == "/_dash-update-component":
        _authorize_callback(runtime, identity)
    elif path in DASH_INTERNAL or path.startswith("/api/v1/openapi"):
        _need(identity, "viewer", "read")
    elif path in TOOL_PAGE_ROLES:
        _need(identity, TOOL_PAGE_ROLES[path])
    else:
        _need(identity, "viewer")
        _need_dashboard(runtime, identity, path.strip("/"))


def _authorize_api(runtime: Runtime, identity: Identity, sub: str, method: str) -> None:
    args = request.args
    if sub.startswith("/metrics/custom/") and method == "POST":
        if identity.kind != "key":
            raise Refused(403, "pushes need an API key with the ingest scope (POST /api/v1/monitoring/keys)")
        return _need(identity, None, "ingest")
    if sub.startswith(("/keys", "/audit", "/users", "/config")):
        return _need(identity, "admin", "admin")
    if sub.startswith("/dashboards"):
        match = re.match(r"^/dashboards/([^/]+)", sub)
        target = match.group(1) if match else None
        if (method in ("PUT", "DELETE") and target != "connections") or sub == "/dashboards/create":
            return _need(identity, "admin", "admin")
        if "/export" in sub:
            _need(identity, "analyst", "read")
        else:
            _need(identity, "viewer", "read")
        if target not in (None, "list", "stats", "create", "connections"):
            _need_dashboard(runtime, identity, target)
        return None
    if sub.startswith("/ws/dashboard/"):
        _need(identity, "viewer", "read")
        return _need_dashboard(runtime, identity, sub.rsplit("/", 1)[-1])
    if sub.startswith("/alerts"):
        writes = method in ("POST", "PUT", "DELETE") and not sub.endswith("/backtest")
        return _need(
            identity,
            "operator" if writes or sub.endswith("/backtest") else "viewer",
            "admin" if writes else "read",
        )
    if sub.startswith(("/analysis", "/metrics/export.csv")):
        _need(identity, "analyst", "read")
        for selector in args.getlist("query"):
            _need_metric(runtime, identity, selector)
        return None
    _need(identity, "viewer", "read")
    if sub == "/metrics/query" and method == "POST":
        body = request.get_json(silent=True, cache=True)
        if isinstance(body, dict) and isinstance(body.get("query"), str):
            _need_metric(runtime, identity, body["query"])
    for selector in args.getlist("query"):
        _need_metric(runtime, identity, selector)
    return None


def _ids(value) -> list:
    """Every component id named in a callback request's outputs, inputs or state."""
    out = []
    if isinstance(value, dict):
        if "id" in value:
            out.append(value["id"])
        for v in value.values():
            if isinstance(v, (list, dict)):
                out.extend(_ids(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_ids(v))
    return out


def _authorize_callback(runtime: Runtime, identity: Identity) -> None:
    """Refuse a callback that would draw a dashboard (or page) the user may not see, before it runs."""
    body = request.get_json(silent=True, cache=True)
    if not isinstance(body, dict):
        raise Refused(400, "a callback request is a JSON object")
    outputs = body.get("outputs")
    ids = _ids(outputs) + _ids(body.get("inputs")) + _ids(body.get("state"))
    for component in ids:
        if isinstance(component, dict) and "dashboard" in component:
            _need_dashboard(runtime, identity, str(component["dashboard"]))
    text = json.dumps(outputs)
    if "trends-" in text:
        _need(identity, "analyst")
    if "admin-" in text:
        _need(identity, "admin")
    for value in _values(body.get("inputs")):  # the page router: pathname names the page to draw
        if isinstance(value, str) and value.startswith("/"):
            if value in TOOL_PAGE_ROLES:
                _need(identity, TOOL_PAGE_ROLES[value])
            else:
                _need_dashboard(runtime, identity, value.strip("/"))


def _values(inputs) -> list:
    out = []
    for item in inputs or []:
        if isinstance(item, dict) and item.get("property") in ("pathname", "href"):
            out.append(item.get("value"))
        elif isinstance(item, list):
            out.extend(_values(item))
    return out


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{html.escape(title)} · Pulseboard</title><link rel=stylesheet href='/assets/pulseboard.css'>"
        f"</head><body><main class='login'>{body}</main></body></html>"
    )


def _login(runtime: Runtime, logins: RateLimiter):
    next_path = request.values.get("next", "/")
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"  # no redirect to another site
    message = ""
    if request.method == "POST":
        if (request.headers.get("Origin") or request.host_url).rstrip("/") != request.host_url.rstrip("/"):
            return Response("login forms are only accepted from Pulseboard's own page", 403)
        wait = logins.hit(request.remote_addr or "")
        if wait:
            response = Response("too many login attempts; wait a minute", 429, mimetype="text/plain")
            response.headers["Retry-After"] = str(wait)
            return response
        identity, reason = runtime.users.check(request.form.get("user", ""), request.form.get("password", ""))
        runtime.audit.write(
            request.form.get("user", "?"),
            "LOGIN",
            "ok" if identity else reason,
            request.remote_addr or "",
            200 if identity else 401,
        )
        if identity is not None:
            session.clear()
            now = runtime.clock()
            session.update(user=identity.name, login=now, seen=now)
            return redirect(next_path)
        message = f"<p class=login-error role=alert>{html.escape(reason)}</p>"
    form = (
        "<h1>Pulseboard</h1><form method=post class=login-form>"
        f"<input type=hidden name=next value='{html.escape(next_path, quote=True)}'>"
        "<label>User <input name=user autocomplete=username required autofocus></label>"
        "<label>Password <input name=password type=password autocomplete=current-password required></label>"
        f"{message}<button type=submit>Log in</button></form>"
    )
    return Response(_page("Log in", form), 401 if message else 200, mimetype="text/html")


def _logout():
    session.clear()
    return redirect("/login")
