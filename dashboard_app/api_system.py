"""Configuration, status and version endpoints."""

from __future__ import annotations

import platform

import dash
import pandas as pd
import plotly

from dashboard_app.api import VERSION, Api
from dashboard_app.runtime import Runtime


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the configuration, status and version endpoints."""
    settings = runtime.settings

    @api.route(
        "GET", "/config/collector", "Collector intervals, scrape targets and the demo switch", "config"
    )
    def collector_config():
        return {
            "environment": settings.environment,
            "collectors": settings.collectors.model_dump(mode="json"),
            "scrape": [t.model_dump(mode="json") for t in settings.scrape],
            "demo": settings.demo,
            "store": settings.store.model_dump(mode="json"),
            "ingest": settings.ingest.model_dump(mode="json"),
        }

    @api.route("GET", "/config/dashboards", "Refresh, default range, points and connection limits", "config")
    def dashboards_config():
        return {
            "environment": settings.environment,
            "dashboards": settings.dashboards.model_dump(mode="json"),
            "max_connections": settings.server.max_connections,
            "available": list(runtime.dashboards),
        }

    @api.route("GET", "/status", "Every component: collectors, store, scrape targets, connections", "status")
    def status():
        store = runtime.store
        return {
            "environment": settings.environment,
            "uptime_seconds": runtime.clock() - runtime.started_at,
            "collectors": runtime.scheduler.health(),
            "store": {
                "series": store.series_count,
                "max_series": store.max_series,
                "samples_appended": store.appended,
                "memory_bytes": store.memory_bytes(),
                "disk_bytes": store.archive.disk_bytes(),
                "problems": runtime.storage_problems,
            },
            "scrape_targets": [
                {
                    "url": t.url,
                    "job": t.job,
                    "instance": t.instance,
                    "up": t.up,
                    "last_scrape": t.last_scrape,
                    "last_error": t.last_error,
                }
                for t in runtime.targets
            ],
            "connections": {"open": runtime.connections.snapshot(), "max": runtime.connections.cap},
            "demo": runtime.demo is not None,
            "problems": runtime.problems,
        }

    @api.route("GET", "/version", "Pulseboard's version and the versions it runs on", "status")
    def version():
        return {
            "version": VERSION,
            "python": platform.python_version(),
            "dash": dash.__version__,
            "plotly": plotly.__version__,
            "pandas": pd.__version__,
        }
