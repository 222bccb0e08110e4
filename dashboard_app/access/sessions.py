"""Login sessions: a signed cookie naming the user and the session generation it belongs to.

The cookie alone is not enough: the user's generation, kept server-side, must still match, so a
logout or a password change ends every copy of an old cookie.
"""

from __future__ import annotations

from flask import request, session
from flask.sessions import SecureCookieSessionInterface

from dashboard_app.access.identity import Identity
from dashboard_app.access.users import Users

COOKIE = "pulseboard"


class TlsAwareSessions(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over TLS (or a trusted proxy says so)."""

    def get_cookie_secure(self, app) -> bool:
        return request.is_secure


def start(users: Users, identity: Identity, now: float) -> None:
    """Begin a session for a user who just logged in."""
    session.clear()
    session.update(user=identity.name, gen=users.generation(identity.name), login=now, seen=now)


def current(users: Users, now: float, idle: float, longest: float) -> Identity | None:
    """Return the identity of the request's session, or None when there is none or it has ended."""
    name = session.get("user")
    if not name:
        return None
    if now - session.get("login", 0) > longest or now - session.get("seen", 0) > idle:
        session.clear()
        return None
    identity = users.identity(name, session.get("gen"))
    if identity is None:
        session.clear()
        return None
    session["seen"] = now
    return identity


def end(users: Users) -> None:
    """End the request's session and every other session of its user."""
    name = session.get("user")
    if name and users.identity(name, session.get("gen")) is not None:
        users.end_sessions(name)
    session.clear()
