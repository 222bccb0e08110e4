"""The WSGI application: ``gunicorn -c python:dashboard_app.production dashboard_app.wsgi:server``.

Built on import from PULSEBOARD_ENV (default development), PULSEBOARD_DATA_DIR and PULSEBOARD_CONFIG.
"""

from __future__ import annotations

import gc
import os

from dashboard_app.cli import build

server = build(
    os.environ.get("PULSEBOARD_ENV", "development"), os.environ.get("PULSEBOARD_DATA_DIR", "./data")
).server
gc.freeze()  # what starting made (Dash, Plotly, the dashboards) is never walked by the collector again
