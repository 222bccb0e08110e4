"""gunicorn's settings: `gunicorn -c python:dashboard_app.production dashboard_app.wsgi:server`.

The same server ``pulseboard serve`` runs (``dashboard_app.serving``), sized by PULSEBOARD_ENV's
settings. Bind with ``--bind``, as usual.
"""

from __future__ import annotations

import os

from dashboard_app import allocator
from dashboard_app.serving import options
from dashboard_app.settings import load_settings

allocator.one_arena()  # gunicorn reads this file in its master, before it forks the worker
globals().update(options(load_settings(os.environ.get("PULSEBOARD_ENV", "production"))))
