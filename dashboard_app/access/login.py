"""The login page and logout: one answer for every failed login, and redirects only within this site."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from flask import Response, redirect, request

from dashboard_app.access import sessions
from dashboard_app.access.limits import LoginBackoff, RateLimiter
from dashboard_app.access.origin import same_origin
from dashboard_app.access.users import Busy

FAILED = "Wrong user name or password."


def safe_next(value: str | None) -> str:
    """Return ``value`` when it is a path of this site, else "/" (no redirect to another site)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\\\r\n\t") or any(ord(c) < 32 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def page(title: str, body: str) -> str:
    """Return a small plain page in Pulseboard's style (login, logout, refusals)."""
    return (
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{html.escape(title)} · Pulseboard</title><link rel=stylesheet href='/assets/pulseboard.css'>"
        f"</head><body><main class='login'>{body}</main></body></html>"
    )


def _form(next_path: str, message: str) -> str:
    return (
        "<h1>Pulseboard</h1><form method=post action=/login class=login-form>"
        f"<input type=hidden name=next value='{html.escape(next_path, quote=True)}'>"
        "<label>User <input name=user autocomplete=username required autofocus></label>"
        "<label>Password <input name=password type=password autocomplete=current-password required></label>"
        f"{message}<button type=submit>Log in</button></form>"
    )


def login(runtime, addresses: RateLimiter, backoff: LoginBackoff):
    """Show the login form, or check a login and start a session."""
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        return Response(page("Log in", _form(next_path, "")), 200, mimetype="text/html")
    if not same_origin():
        return Response(
            "login forms are only accepted from Pulseboard's own page", 403, mimetype="text/plain"
        )
    address = request.remote_addr or ""
    name = request.form.get("user", "")[:200]
    wait = addresses.hit(address) or backoff.wait(name, address)
    if wait:
        return _too_many(next_path, f"Too many attempts: try again in {wait} s.", wait)
    try:
        identity = runtime.users.check(name, request.form.get("password", ""))
    except Busy as exc:
        return _too_many(next_path, str(exc), 2)
    runtime.audit.write(
        name or "?", "LOGIN", "ok" if identity else "failed", address, 200 if identity else 401
    )
    if identity is None:
        backoff.failed(name, address)
        message = f"<p class=login-error role=alert>{FAILED}</p>"
        return Response(page("Log in", _form(next_path, message)), 401, mimetype="text/html")
    backoff.succeeded(name, address)
    sessions.start(runtime.users, identity, runtime.clock())
    return redirect(next_path)


def _too_many(next_path: str, message: str, wait: int) -> Response:
    body = page("Log in", _form(next_path, f"<p class=login-error role=alert>{message}</p>"))
    response = Response(body, 429, mimetype="text/html")
    response.headers["Retry-After"] = str(wait)
    return response


def logout(runtime):
    """End the session on POST; a GET shows the button that does it (a link must not log anyone out)."""
    if request.method == "GET":
        body = (
            "<h1>Log out</h1><form method=post action=/logout class=login-form>"
            "<button type=submit>Log out of Pulseboard</button></form>"
        )
        return Response(page("Log out", body), 200, mimetype="text/html")
    if not same_origin():
        return Response("logout is only accepted from Pulseboard's own pages", 403, mimetype="text/plain")
    sessions.end(runtime.users)
    return redirect("/login")
