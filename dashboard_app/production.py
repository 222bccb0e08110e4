"""gunicorn's settings for Pulseboard: `gunicorn -c python:dashboard_app.production app:server`.

One worker, since the embedded store lives in the process. Every live WebSocket viewer holds a
thread for as long as it watches, so the worker has a thread for each live connection the channel
admits (``server.max_connections`` of PULSEBOARD_ENV's settings) and as many again for page
requests, which never wait on one another's viewers. Bind with ``--bind``, as usual.
"""

from __future__ import annotations

import os

from dashboard_app.settings import load_settings

PAGE_THREADS = 32  # page and API requests served at once beside the live connections

_settings = load_settings(os.environ.get("PULSEBOARD_ENV", "production"))

workers = 1
worker_class = "gthread"
threads = _settings.server.max_connections + PAGE_THREADS
worker_connections = 4096  # open keep-alive connections the worker holds (viewers between refreshes)
keepalive = 75  # seconds an idle connection stays open: longer than any refresh, so a viewer reconnects never
timeout = 60  # a live connection is not a stuck worker: the gthread worker keeps its heartbeat going
graceful_timeout = 20  # on stop, pages finish and live viewers are closed within this
control_socket_disable = True
