"""Start Pulseboard from a checkout: `python app.py` is `pulseboard serve` (and takes its commands and
options), `gunicorn app:server` is `gunicorn dashboard_app.wsgi:server`."""

from __future__ import annotations

import sys

from dashboard_app.cli import main


def __getattr__(name: str):
    if name == "server":  # gunicorn asks for it: build the app only then
        from dashboard_app.wsgi import server

        return server
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
