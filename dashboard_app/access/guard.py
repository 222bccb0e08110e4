"""The one place permissions are enforced: every request is identified, checked against the
declaration of its route or callback, and handed a source bound to its caller before anything runs.

What is not declared is refused, so a new endpoint or callback cannot be called before someone has
said who may call it.
"""

from __future__ import annotations

import base64
import html
import json
from urllib.parse import urlencode

from dash import Dash
from flask import Response, g, redirect, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard_app.access import login as login_page
from dashboard_app.access import sessions
from dashboard_app.access.identity import NOBODY, OPEN, Identity
from dashboard_app.access.limits import LoginBackoff, RateLimiter
from dashboard_app.access.origin import same_origin
from dashboard_app.access.permissions import ANYONE, INGEST, Permission, Permissions
from dashboard_app.api.frame import PREFIX, error_response
from dashboard_app.runtime import Runtime
from layouts.components import TOOL_PAGE_ROLES

CALLBACK = "/_dash-update-component"
WRITES = ("POST", "PUT", "DELETE", "PATCH")
# POSTs that change no setting: pushed samples (data, not configuration), queries and backtests (reads).
NOT_WRITES = ("/metrics/custom/record", "/metrics/query", "/backtest")
ADDRESS_PARTS = ("pathname", "search", "hash", "href")  # what the browser's address bar gives: text
MAX_DEPTH = 32  # JSON nesting a callback request may have; Dash's own is at most 5


class Refused(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


def install(app: Dash, runtime: Runtime, permissions: Permissions) -> None:
    """Put the checks in front of every route of the app's server."""
    server = app.server
    cfg = runtime.settings.auth
    proxies = runtime.settings.server.trusted_proxies
    if proxies:  # the client's address and scheme as the proxy saw them: for limits and Secure cookies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    limiter = RateLimiter(cfg.rate_limit)
    pushes = RateLimiter(cfg.ingest_rate_limit)  # per key, on the ingest routes
    anonymous = RateLimiter(cfg.anonymous_rate_limit)  # per address: requests without valid credentials
    if cfg.enabled:
        server.secret_key = runtime.secrets.secret_key
        server.session_interface = sessions.TlsAwareSessions()
        server.config.update(
            SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_NAME=sessions.COOKIE
        )
        addresses = RateLimiter(cfg.login_rate_limit)
        backoff = LoginBackoff(cfg.login_backoff_after, cfg.login_backoff_max)
        server.add_url_rule(
            "/login", "login", lambda: login_page.login(runtime, addresses, backoff), methods=["GET", "POST"]
        )
        server.add_url_rule("/logout", "logout", lambda: login_page.logout(runtime), methods=["GET", "POST"])
        permissions.route("/login", ("GET", "POST"), ANYONE)
        permissions.route("/logout", ("GET", "POST"), ANYONE)

    @server.before_request
    def _guard():
        g.identity = OPEN if not cfg.enabled else NOBODY
        rule = request.url_rule.rule if request.url_rule is not None else None
        permission = permissions.for_route(rule, request.method) if rule is not None else None
        try:
            if permission is not None and not permission.login:
                return None
            if cfg.enabled:
                address = request.remote_addr or ""
                wait = anonymous.wait(address)
                if wait:  # before any key is looked up or session read
                    return error_response(
                        f"more than {cfg.anonymous_rate_limit} requests a minute without valid credentials "
                        "from this address; slow down",
                        429,
                        retry_after=wait,
                    )
                try:
                    identity = _identify(runtime)
                except Refused:
                    anonymous.hit(address)
                    raise
                if identity is None:
                    anonymous.hit(address)
                    if _is_page(request.path) and request.method == "GET":
                        return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))
                    raise Refused(401, "log in, or send an API key in Authorization: Bearer or X-API-Key")
                g.identity = identity
                pushing = permission is INGEST
                wait = (pushes if pushing else limiter).hit(identity.name)
                if wait:
                    most = cfg.ingest_rate_limit if pushing else cfg.rate_limit
                    return error_response(
                        f"more than {most} requests a minute; slow down", 429, retry_after=wait
                    )
                if identity.kind == "user" and request.method in WRITES and not same_origin():
                    raise Refused(
                        403, "a change made with a login must come from Pulseboard's own pages (Origin check)"
                    )
            identity = g.identity
            if rule is None:
                return None  # no such route: the 404 says so, and nothing is read
            if permission is None:
                raise Refused(403, f"{request.method} {rule} declares no permission, so nobody may call it")
            _enforce(runtime, permission, identity)
            if rule == CALLBACK:
                _enforce_callback(runtime, permissions, identity)
            g.pulseboard_reads = runtime.sources.for_caller(identity)
        except Refused as exc:
            path = request.path
            if path.startswith(("/api/", "/_dash", "/metrics", "/write", "/v1/")):
                return error_response(str(exc), exc.status, exc.field)
            return Response(html.escape(str(exc)), exc.status, mimetype="text/plain")
        return None

    @server.after_request
    def _audit(response):
        if request.method in WRITES and request.path.startswith(PREFIX):
            if not request.path.endswith(NOT_WRITES):
                who = getattr(g, "identity", OPEN).name
                runtime.audit.write(
                    who,
                    request.method,
                    request.path,
                    request.remote_addr or "",
                    response.status_code,
                    g.get("audit_detail"),  # why, when the endpoint was told (a silence's reason)
                )
        return response


def _is_page(path: str) -> bool:
    return not path.startswith(("/api/", "/_dash", "/metrics", "/write", "/v1/"))


def _identify(runtime: Runtime) -> Identity | None:
    if "api_key" in request.args or "token" in request.args:
        raise Refused(400, "API keys go in a header (Authorization: Bearer or X-API-Key), never in a URL")
    token = _key_of(request.headers.get("Authorization", "")) or request.headers.get("X-API-Key")
    if token:
        identity = runtime.keys.identify(token)
        if identity is None:
            raise Refused(401, "that API key is unknown, revoked or expired")
        return identity
    cfg = runtime.settings.auth
    if not session.get("user"):
        return None
    return sessions.current(runtime.users, runtime.clock(), cfg.session_idle, cfg.session_max)


def _key_of(header: str) -> str | None:
    """Return the API key an Authorization header carries: Bearer, Token (InfluxDB's clients and
    Telegraf) or Basic with the key as the password (InfluxDB 1 clients)."""
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme in ("bearer", "token"):
        return value or None
    if scheme == "basic":
        try:
            return base64.b64decode(value, validate=True).decode().partition(":")[2] or None
        except (ValueError, UnicodeDecodeError):
            raise Refused(401, "the Basic credentials cannot be read") from None
    return None


def _enforce(runtime: Runtime, permission: Permission, identity: Identity) -> None:
    """Refuse a caller whose role or key scope the declaration does not allow."""
    if identity.kind == "key":
        scope = permission.scope
        if scope is None:
            raise Refused(403, "this needs a login; API keys may not call it")
        if scope != "*" and scope not in identity.scopes and "admin" not in identity.scopes:
            scopes = ", ".join(identity.scopes)
            raise Refused(403, f"this key's scopes ({scopes}) do not allow this; it needs {scope}")
    elif identity.kind == "user":  # (without auth, everyone is the open identity: any call goes)
        if permission.role is None:
            raise Refused(403, f"this takes an API key with the {permission.scope} scope, not a login")
        if not identity.at_least(permission.role):
            raise Refused(403, f"{identity.name} is a {identity.role}; this needs a {permission.role}")
    where = permission.dashboard
    if where == "path":
        args = request.view_args or {}
        _need_dashboard(runtime, identity, args.get("id") or args.get("dashboard_id"))
    elif where == "page":
        _need_page(runtime, identity, request.path)


def _need_dashboard(runtime: Runtime, identity: Identity, dashboard_id: object) -> None:
    dashboard = runtime.dashboards.get(dashboard_id) if isinstance(dashboard_id, str) else None
    if dashboard is not None and not identity.sees(dashboard.access):
        raise Refused(403, f"{identity.name} may not see the {dashboard.access} dashboards")


def _need_page(runtime: Runtime, identity: Identity, path: object) -> None:
    if not isinstance(path, str):
        raise Refused(400, "a page is named by its path", "pathname")
    if path in TOOL_PAGE_ROLES:
        if not identity.at_least(TOOL_PAGE_ROLES[path]):
            raise Refused(
                403, f"{identity.name} is a {identity.role}; this page needs the {TOOL_PAGE_ROLES[path]} role"
            )
        return
    _need_dashboard(runtime, identity, path.strip("/"))


def _depth(value, limit: int) -> bool:
    """Return whether a parsed JSON value nests deeper than ``limit``."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return False


def callback_body() -> dict:
    """Read and check the shape of a callback request; a malformed one is a 400 naming the part."""
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):
        raise Refused(400, "a callback request is a JSON object", "body") from None
    if not isinstance(body, dict):
        raise Refused(400, "a callback request is a JSON object", "body")
    if _depth(body, MAX_DEPTH):
        raise Refused(400, f"a callback request nests at most {MAX_DEPTH} levels deep", "body")
    if not isinstance(body.get("output"), str):
        raise Refused(400, "output must name the callback's outputs", "output")
    if not isinstance(body.get("outputs"), dict | list):
        raise Refused(400, "outputs must be an object or a list", "outputs")
    for part in ("inputs", "state"):
        items = body.get(part, [])
        if not isinstance(items, list):
            raise Refused(400, f"{part} must be a list", part)
        for i, item in enumerate(items):
            for one in item if isinstance(item, list) else [item]:
                if not isinstance(one, dict) or "id" not in one or not isinstance(one.get("property"), str):
                    raise Refused(400, f"{part}[{i}] must be an object with id and property", f"{part}[{i}]")
                if one["property"] in ADDRESS_PARTS and not _address_value(one):
                    raise Refused(400, f"{part}[{i}]: a {one['property']} is a text", f"{part}[{i}].value")
    if not isinstance(body.get("changedPropIds", []), list):
        raise Refused(400, "changedPropIds must be a list", "changedPropIds")
    return body


def _address_value(item: dict) -> bool:
    """Return whether an address part holds text (a pathname a path of this site; others may be empty)."""
    value = item.get("value", "")
    if item["property"] == "pathname":
        return "value" not in item or (isinstance(value, str) and value.startswith("/"))
    return isinstance(value, str) or value is None


def _ids(value) -> list:
    """Every component id named in a callback request's outputs, inputs or state."""
    out = []
    if isinstance(value, dict):
        if "id" in value:
            out.append(value["id"])
        for v in value.values():
            if isinstance(v, list | dict):
                out.extend(_ids(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_ids(v))
    return out


def _enforce_callback(runtime: Runtime, permissions: Permissions, identity: Identity) -> None:
    """Refuse a callback that is undeclared, or whose declaration the caller does not meet."""
    body = callback_body()
    permission = permissions.for_callback(body["output"])
    if permission is None:
        raise Refused(403, "this callback declares no permission, so nobody may call it", "output")
    _enforce(runtime, permission, identity)
    if permission.dashboard == "ids":
        ids = _ids(body["outputs"]) + _ids(body.get("inputs")) + _ids(body.get("state"))
        for component in ids:
            if isinstance(component, dict) and "dashboard" in component:
                _need_dashboard(runtime, identity, component["dashboard"])
    elif permission.dashboard == "pathname":
        for item in body.get("inputs", []):
            if isinstance(item, dict) and item.get("property") == "pathname":
                _need_page(runtime, identity, item.get("value") or "/")
