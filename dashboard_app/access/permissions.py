"""What each route and callback needs, declared where it is declared; what is not declared is refused.

A declaration says which role a logged-in user needs, which scope an API key needs, and where the
request names the dashboard or series it reads. The guard enforces it before the handler runs; the
data itself is then read through the caller's source, which returns only series of their levels.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dash import Dash, Output
from dash._utils import create_callback_id
from dash.exceptions import PreventUpdate

log = logging.getLogger(__name__)


class BadInput(Exception):
    """A callback input the callback cannot use (a forged or malformed request): answered with a 400."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Permission:
    """Who may call a route or callback, and where its request names what it reads."""

    role: str | None = "viewer"  # the least role of a logged-in user; None: no login allows it
    scope: str | None = "read"  # the API key scope that allows it (admin allows all, "*" any); None: no key
    login: bool = True  # False: anyone may call it, logged in or not (the login page, static files)
    dashboard: str | None = None  # where a dashboard is named: "path", "query", "ids", "pathname"
    series: str | None = None  # where series are named: "query", "body", "dashboard", "all", "rule"

    @property
    def reads_series(self) -> bool:
        """Whether the answer can hold metric data (the level test walks these)."""
        return self.series is not None


ANYONE = Permission(role=None, scope=None, login=False)
ANY_CALLER = Permission("viewer", "*")  # any logged-in user or valid key (reads no metric data)
SIGNED_IN = Permission("viewer", "read")
ADMIN = Permission("admin", "admin")
INGEST = Permission(None, "ingest")  # pushes come from applications, with a key


class Permissions:
    """The declarations of every route (by URL rule and method) and callback (by its outputs)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Permission] = {}
        self.prefixes: dict[str, Permission] = {}
        self.callbacks: dict[str, Permission] = {}

    def route(self, rule: str, methods: tuple[str, ...], permission: Permission) -> None:
        """Declare what a URL rule needs for each of its methods."""
        for method in methods:
            self.routes[(rule, method)] = permission
            if method == "GET":
                self.routes[(rule, "HEAD")] = permission

    def prefix(self, start: str, permission: Permission) -> None:
        """Declare what every rule under a path prefix needs (static files)."""
        self.prefixes[start] = permission

    def for_route(self, rule: str, method: str) -> Permission | None:
        """Return the declaration of a matched URL rule, or None (undeclared: refused)."""
        found = self.routes.get((rule, method))
        if found is None and method == "OPTIONS":
            found = next((p for (r, _), p in self.routes.items() if r == rule), None)
        if found is None:
            found = next((p for start, p in self.prefixes.items() if rule.startswith(start)), None)
        return found

    def callback(self, app: Dash, permission: Permission, *args, **kwargs) -> Callable:
        """Register a Dash callback as ``app.callback`` does, with what it needs declared."""
        before = set(app.callback_map)
        decorate = app.callback(*args, **kwargs)

        def register(func: Callable) -> Callable:
            @functools.wraps(func)
            def checked(*values):
                try:
                    return func(*values)
                except PreventUpdate:
                    raise
                except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                    # The pages send well-formed inputs; anything else is a hand-made request.
                    log.warning("callback %s refused its inputs: %r", func.__name__, exc)
                    raise BadInput(
                        f"the inputs of {func.__name__} are not what its page sends ({type(exc).__name__})",
                        "inputs",
                    ) from None

            out = decorate(checked)
            for key in set(app.callback_map) - before:
                self.callbacks[key] = permission
            return out

        return register

    def dash_callback(self, outputs: list[Output], permission: Permission) -> None:
        """Declare what a callback that Dash registers itself (the page router) needs."""
        self.callbacks[create_callback_id(outputs, [], False)] = permission

    def for_callback(self, output: str) -> Permission | None:
        """Return the declaration of a callback by the output string Dash sends, or None."""
        return self.callbacks.get(output)
