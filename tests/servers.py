"""Run a Pulseboard app on a real 127.0.0.1 port inside the test process, and stop it after."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from flask import Flask
from werkzeug.serving import make_server

from dashboard_app.api import PREFIX as API
from dashboard_app.runtime import Runtime
from dashboard_app.settings import load_settings
from dashboard_app.web import create_app


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Running:
    """A runtime being served, and the base URL it answers on."""

    runtime: Runtime
    url: str
    flask: Flask

    def call(
        self, method: str, path: str, body=None, raw: bytes | None = None, **kwargs
    ) -> requests.Response:
        """Send a request to an API path under /api/v1/monitoring (or a full path starting with /)."""
        url = self.url + (path if path.startswith("/api/v1/openapi") or path == "/metrics" else API + path)
        if raw is not None:
            kwargs["data"] = raw
            kwargs.setdefault("headers", {"Content-Type": "application/json"})
        elif body is not None:
            kwargs["json"] = body
        return requests.request(method, url, timeout=10, **kwargs)


def quiet_settings(**overrides: str):
    """Development settings without the demo, with PULSEBOARD_* style overrides."""
    environ = {"PULSEBOARD_DEMO": "false", **{f"PULSEBOARD_{k.upper()}": v for k, v in overrides.items()}}
    return load_settings("development", environ=environ)


@contextmanager
def serving(runtime: Runtime, port: int = 0):
    """Serve a runtime's app over HTTP (on a free port unless one is given)."""
    app = create_app(runtime)
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pulseboard-test-server", daemon=True)
    thread.start()
    try:
        yield Running(runtime, f"http://127.0.0.1:{server.server_port}", app.server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
