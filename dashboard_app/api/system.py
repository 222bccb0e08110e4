"""Configuration, status and version endpoints."""

from __future__ import annotations

import platform

import dash
import pandas as pd
import plotly
from flask import g

from dashboard_app import __version__
from dashboard_app.access.permissions import ADMIN, ANY_CALLER, SIGNED_IN
from dashboard_app.api.frame import Api
from dashboard_app.runtime import Runtime


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the configuration, status and version endpoints."""
    settings = runtime.settings

    @api.route(
        "GET",
        "/config/collector",
        "Collector intervals, scrape targets and the demo switch",
        "config",
        allow=ADMIN,
        answer={
            "environment": {"type": "string"},
            "collectors": {"type": "object"},
            "scrape": {"type": "array"},
        },
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

    @api.route(
        "GET",
        "/config/dashboards",
        "Refresh, default range, points and connection limits",
        "config",
        allow=ADMIN,
        answer={"environment": {"type": "string"}, "dashboards": {"type": "object"}},
    )
    def dashboards_config():
        return {
            "environment": settings.environment,
            "dashboards": settings.dashboards.model_dump(mode="json"),
            "max_connections": settings.server.max_connections,
            "available": list(runtime.dashboards),
        }

    @api.route(
        "GET",
        "/status",
        "Every component: collectors, store, scrape targets, connections (their ids for admins only)",
        "status",
        allow=SIGNED_IN,
        answer={
            "environment": {"type": "string"},
            "uptime_seconds": {"type": "number"},
            "collectors": {"type": "array", "items": {"type": "object"}},
            "store": {"type": "object"},
            "scrape_targets": {"type": "array", "items": {"type": "object"}},
            "connections": {"type": "object"},
            "alerting": {"type": "object"},
        },
    )
    def status():
        store = runtime.store
        connections = runtime.connections.snapshot()
        if not g.identity.sees_everything:  # an id is what closes a connection: only its owner knows it
            connections = [{k: v for k, v in c.items() if k not in ("id", "owner")} for c in connections]
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
            "connections": {"open": connections, "max": runtime.connections.cap},
            "alerting": {  # of replicas on one database, the one that evaluates and notifies
                "replica": runtime.alerts.lease.holder,
                "evaluates_here": runtime.alerts.leading,
                "evaluating_replica": runtime.alerts.lease.holder_now(),
            },
            "demo": runtime.demo is not None,
            "problems": runtime.problems,
        }

    @api.route(
        "GET",
        "/version",
        "Pulseboard's version and the versions it runs on",
        "status",
        allow=ANY_CALLER,
        answer={"version": {"type": "string"}, "python": {"type": "string"}},
    )
    def version():
        return {
            "version": __version__,
            "python": platform.python_version(),
            "dash": dash.__version__,
            "plotly": plotly.__version__,
            "pandas": pd.__version__,
        }
