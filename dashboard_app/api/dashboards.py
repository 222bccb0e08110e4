"""Dashboard endpoints: list, read, create, change and delete dashboards; open and close live connections."""

from __future__ import annotations

from flask import g

from dashboard_app.access.permissions import ADMIN, SIGNED_IN, Permission
from dashboard_app.api.frame import Api, ApiError
from dashboard_app.dashboard_store import DashboardError
from dashboard_app.live.connections import PoolFull
from dashboard_app.runtime import Runtime
from ingest.paths import API_PREFIX
from layouts.schema import Dashboard

WS_PATH = API_PREFIX + "/ws/dashboard/{id}"


def _summary(runtime: Runtime, d: Dashboard) -> dict:
    return {
        "id": d.id,
        "title": d.title,
        "access": d.access,
        "description": d.description,
        "panels": len(d.panels),
        "shipped": runtime.dashboard_store.is_shipped(d.id),
        "url": f"/{d.id}",
    }


SUMMARY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "access": {"type": "string"},
        "description": {"type": "string"},
        "panels": {"type": "integer"},
        "shipped": {"type": "boolean"},
        "url": {"type": "string"},
    },
}
ONE = {"dashboard": {"type": "object"}, **SUMMARY["properties"]}


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the dashboard endpoints."""
    library, pool = runtime.dashboard_store, runtime.connections
    schema = Dashboard.model_json_schema()

    def found(dashboard_id: str) -> Dashboard:
        dashboard = library.get(dashboard_id)
        if dashboard is None:
            known = ", ".join(library.dashboards)
            raise ApiError(f"no dashboard {dashboard_id!r}; known: {known}", 404, "id")
        return dashboard

    def guarded(action):
        try:
            return action()
        except DashboardError as exc:
            raise ApiError(str(exc), exc.status, exc.field) from None

    @api.route(
        "GET",
        "/dashboards/stats",
        "Dashboards, panels and live connections",
        "dashboards",
        allow=SIGNED_IN,
        answer={"dashboards": {"type": "integer"}, "connections": {"type": "integer"}},
    )
    def dashboard_stats():
        open_now = pool.snapshot()
        return {
            "dashboards": len(library.dashboards),
            "shipped": len(library.shipped),
            "panels": sum(len(d.panels) for d in library.dashboards.values()),
            "connections": len(open_now),
            "max_connections": pool.cap,
            "connections_by_dashboard": {
                d: sum(1 for c in open_now if c["dashboard"] == d) for d in library.dashboards
            },
        }

    @api.route(
        "GET",
        "/dashboards/list",
        "The dashboards the caller may see, shipped ones first",
        "dashboards",
        allow=SIGNED_IN,
        answer={"dashboards": {"type": "array", "items": SUMMARY}},
    )
    def list_dashboards():
        who = g.identity
        return {
            "dashboards": [_summary(runtime, d) for d in library.dashboards.values() if who.sees(d.access)]
        }

    @api.route(
        "GET",
        "/dashboards/{id}",
        "One dashboard's full definition",
        "dashboards",
        allow=Permission(dashboard="path"),
        answer=ONE,
    )
    def get_dashboard(id: str):
        dashboard = found(id)
        return {"dashboard": dashboard.model_dump(mode="json"), **_summary(runtime, dashboard)}

    @api.route(
        "POST",
        "/dashboards/create",
        "Create a dashboard (the YAML files' schema)",
        "dashboards",
        schema,
        status=201,
        allow=ADMIN,
        answer=ONE,
    )
    def create_dashboard():
        body = api.json_body()
        dashboard = guarded(lambda: library.create(body))
        return {"dashboard": dashboard.model_dump(mode="json"), **_summary(runtime, dashboard)}, 201

    @api.route(
        "PUT",
        "/dashboards/{id}",
        "Replace a dashboard made through the API",
        "dashboards",
        schema,
        allow=ADMIN,
        answer=ONE,
    )
    def update_dashboard(id: str):
        body = api.json_body()
        dashboard = guarded(lambda: library.update(id, body))
        return {"dashboard": dashboard.model_dump(mode="json"), **_summary(runtime, dashboard)}

    @api.route(
        "DELETE",
        "/dashboards/{id}",
        "Delete a dashboard made through the API",
        "dashboards",
        allow=ADMIN,
        answer={"deleted": {"type": "string"}},
    )
    def delete_dashboard(id: str):
        guarded(lambda: library.delete(id))
        return {"deleted": id}

    @api.route(
        "POST",
        "/dashboards/{id}/connect",
        "Open a live connection to a dashboard",
        "dashboards",
        status=201,
        allow=Permission(dashboard="path"),
        answer={
            "connection_id": {"type": "string"},
            "dashboard": {"type": "string"},
            "websocket": {"type": "string"},
            "idle_timeout": {"type": "number"},
        },
    )
    def connect(id: str):
        found(id)
        try:
            conn = pool.open(id, "rest", g.identity.name)
        except PoolFull as exc:
            raise ApiError(f"{exc}; close one or try again later", 429) from None
        return {
            "connection_id": conn.id,
            "dashboard": id,
            "websocket": WS_PATH.replace("{id}", id),
            "idle_timeout": pool.idle_timeout,
        }, 201

    @api.route(
        "DELETE",
        "/dashboards/connections/{connection_id}",
        "Close one of the caller's live connections (an admin: anyone's)",
        "dashboards",
        allow=SIGNED_IN,
        answer={"closed": {"type": "string"}},
    )
    def disconnect(connection_id: str):
        who = g.identity
        owner = None if who.sees_everything else who.name
        if not pool.close(connection_id, owner):
            raise ApiError(f"no open connection {connection_id!r}", 404, "connection_id")
        return {"closed": connection_id}
