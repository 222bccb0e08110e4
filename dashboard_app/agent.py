"""Agent mode: only the host's collectors and /metrics, for a Prometheus server to scrape.

No pages, no history on disk, no alerts: Prometheus keeps the history and the dashboards read it.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

from collectors.instruments import Instruments
from collectors.producers import schedule_producers
from collectors.scheduler import Scheduler
from dashboard_app.api.exposition import HeldExposition
from dashboard_app.settings import Settings
from dashboard_app.sources.source import EmbeddedSource
from tsdb.store import build_store

HOME = (
    "Pulseboard agent: this host's metrics are at /metrics for a Prometheus server to scrape.\n"
    "Dashboards run elsewhere (pulseboard serve).\n"
)


class Agent:
    """Collect this host's metrics into a short in-memory store and expose them."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = build_store(settings)  # history in memory, compressed, for its retention
        self.scheduler = Scheduler()
        schedule_producers(self.scheduler, self.store, settings.collectors, Instruments())
        self.scheduler.every("flush", settings.store.flush_interval, self.store.flush)
        self.source = EmbeddedSource(self.store)
        self.server = Flask("pulseboard-agent")
        self.server.add_url_rule("/", "home", lambda: Response(HOME, mimetype="text/plain"))
        self.exposition = HeldExposition(
            self.source, self.store.specs, lambda: (self.store.appended, self.store.series_count)
        )
        self.server.add_url_rule(
            "/metrics", "metrics", lambda: self.exposition.response(request.headers.get("Accept", ""))
        )

    def start(self) -> None:
        self.scheduler.start()

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics until stopped, a thread per connection, without a log line per scrape."""
        make_server(host, port, self.server, threaded=True, request_handler=_Handler).serve_forever()

    def stop(self) -> None:
        self.scheduler.stop()


class _Handler(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        """A scrape a second is not news: errors are still logged."""
