"""The one production server, for `pulseboard serve` and `gunicorn -c python:dashboard_app.production`.

One worker, since the embedded store lives in the process (reading from Prometheus, run as many
replicas as you like). The worker reads every request whole before a thread takes it
(``dashboard_app.worker``), so slow or idle clients never hold a thread. Every live WebSocket viewer
holds a thread for as long as it watches, so the worker has a thread for each live connection the
channel admits (``server.max_connections``) and ``PAGE_THREADS`` more for pages, pushes and the API,
which never wait on one another's viewers.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from gunicorn.app.base import BaseApplication

from dashboard_app import allocator

SWITCH_INTERVAL = 0.001  # seconds a thread runs before one waiting for the interpreter takes it
PAGE_THREADS = 32  # page and API requests served at once beside the live connections


def options(settings) -> dict:
    """Return gunicorn's settings for a Pulseboard with these settings."""
    return {
        "workers": 1,
        "worker_class": "dashboard_app.worker.WholeRequestWorker",
        "threads": settings.server.max_connections + PAGE_THREADS,
        "worker_connections": 4096,  # connections held open: viewers between refreshes, idle ones
        "keepalive": 75,  # seconds an idle connection stays open: longer than any refresh
        "timeout": 60,  # a live connection is not a stuck worker: the worker keeps its heartbeat going
        "graceful_timeout": 20,  # on stop, pages finish and live viewers are closed within this
        "control_socket_disable": True,
        "post_worker_init": started,
    }


def started(_worker) -> None:
    """Once the worker has built the app: what starting made (Dash, Plotly, the dashboards, the store's
    index) is left out of the garbage collector's walks, which then cost pushes and refreshes less; and
    a thread waiting for the interpreter (a refresh back from reading its socket) gets it within 1 ms
    of asking, not 5, while a render or a push holds it."""
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)


class Server(BaseApplication):
    """gunicorn serving the app that ``load`` builds in the worker, on ``bind`` (host:port)."""

    def __init__(self, load: Callable[[], object], settings, bind: str):
        self._load = load
        self._options = {**options(settings), "bind": [bind]}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._load()

    def run(self) -> None:
        allocator.one_arena()  # in the master, so the worker it forks has it before any thread starts
        super().run()
