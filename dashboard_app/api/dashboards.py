"""Dashboard endpoints: list, read, create, change and delete dashboards; open and close live connections."""

from __future__ import annotations

import json

from flask import Response, g, request

from dashboard_app.access.permissions import SIGNED_IN, Permission
from dashboard_app.api.frame import Api, ApiError
from dashboard_app.dashboard_store import DashboardError, document, document_text
from dashboard_app.live.connections import PoolFull
from dashboard_app.runtime import Runtime
from ingest.paths import API_PREFIX
from layouts import grafana
from layouts.schema import Dashboard
from layouts.validation import YamlProblem, load_yaml, yaml_place
from tsdb.metrics import ACCESS_LEVELS

WS_PATH = API_PREFIX + "/ws/dashboard/{id}"


EDITS = Permission("editor", "admin")  # editors change dashboards of their levels; admins any, shipped too
DOCUMENT_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _summary(runtime: Runtime, d: Dashboard) -> dict:
    library = runtime.dashboard_store
    return {
        "id": d.id,
        "title": d.title,
        "access": d.access,
        "description": d.description,
        "panels": len(d.panels),
        "shipped": library.is_shipped(d.id),
        "version": library.version(d.id),
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
        "version": {"type": "integer", "description": "Send it back as If-Match (or ?version=) to save"},
        "url": {"type": "string"},
    },
}
ONE = {"dashboard": {"type": "object"}, **SUMMARY["properties"]}
VERSION_PARAM = {
    "name": "version",
    "in": "query",
    "schema": {"type": "integer"},
    "description": "The version the change was made from (or the If-Match header): a save made since "
    "by someone else answers 409 instead of being overwritten",
}


def document_body(api: Api) -> object:
    """Read a dashboard body: JSON, or YAML when the request says so (an uploaded file)."""
    kind = (request.mimetype or "").lower()
    if kind not in DOCUMENT_TYPES:
        return api.json_body()
    raw = request.get_data(cache=True)
    if len(raw) > api.max_body:
        raise ApiError(f"the body is larger than {api.max_body:,} bytes", 413)
    try:
        return load_yaml(raw.decode("utf-8"))[0]
    except UnicodeDecodeError:
        raise ApiError("the body is not UTF-8 text", field="body") from None
    except YamlProblem as exc:
        raise ApiError(f"the body is not valid YAML{yaml_place(exc)}: {exc.problem}", field="body") from None


def base_version() -> int | None:
    """The version a change was made from: If-Match or ?version=, None when not said."""
    text = (request.headers.get("If-Match") or request.args.get("version") or "").strip().strip('"').strip()
    if not text:
        return None
    if not text.isdigit():
        raise ApiError(f"version must be a whole number, not {text[:40]!r}", field="version")
    return int(text)


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the dashboard endpoints."""
    library, pool = runtime.dashboard_store, runtime.connections
    schema = Dashboard.model_json_schema()

    def found(dashboard_id: str) -> Dashboard:
        dashboard = library.get(dashboard_id)
        if dashboard is None:
            known = ", ".join(library.dashboards)
            raise ApiError(f"no dashboard {dashboard_id!r}; known: {known}", 404, "id")
        if not g.identity.sees(dashboard.access):
            raise ApiError(f"dashboard {dashboard_id!r} is not of your access levels", 403, "id")
        return dashboard

    def guarded(action):
        try:
            return action()
        except DashboardError as exc:
            raise ApiError(str(exc), exc.status, exc.field) from None

    def may_write(access: str) -> None:
        who = g.identity
        if not who.sees(access):
            levels = ", ".join(who.access) or "none"
            raise ApiError(
                f"{who.name} may only make dashboards of their levels ({levels}), not {access!r}",
                403,
                "access",
            )

    def body_access(body) -> None:
        if isinstance(body, dict) and isinstance(body.get("access"), str):
            may_write(body["access"])

    def one(dashboard: Dashboard) -> dict:
        return {"dashboard": dashboard.model_dump(mode="json"), **_summary(runtime, dashboard)}

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
        "One dashboard's full definition and version",
        "dashboards",
        allow=Permission(dashboard="path"),
        answer=ONE,
    )
    def get_dashboard(id: str):
        return one(found(id))

    @api.route(
        "GET",
        "/dashboards/{id}/download",
        "A dashboard as a file: YAML (format=yaml, the default) or JSON (format=json)",
        "dashboards",
        allow=Permission(dashboard="path"),
        params=[{"name": "format", "in": "query", "schema": {"type": "string", "enum": ["yaml", "json"]}}],
        media="application/yaml",
    )
    def download_dashboard(id: str):
        dashboard = found(id)
        kind = request.args.get("format", "yaml")
        if kind not in ("yaml", "json"):
            raise ApiError(f"format must be yaml or json, not {kind[:20]!r}", field="format")
        if kind == "json":
            body = json.dumps(document(dashboard), indent=2, ensure_ascii=False) + "\n"
            mime = "application/json"
        else:
            body, mime = document_text(dashboard), "application/yaml"
        response = Response(body, mimetype=mime)
        response.headers["Content-Disposition"] = f'attachment; filename="{dashboard.id}.{kind}"'
        response.headers["ETag"] = f'"{library.version(id)}"'
        return response

    @api.route(
        "POST",
        "/dashboards/create",
        "Create a dashboard (the YAML files' schema; JSON, or YAML with Content-Type: application/yaml)",
        "dashboards",
        schema,
        status=201,
        allow=EDITS,
        answer=ONE,
    )
    def create_dashboard():
        body = document_body(api)
        body_access(body)
        return one(guarded(lambda: library.create(body, g.identity.name))), 201

    @api.route(
        "PUT",
        "/dashboards/{id}",
        "Save a new version of a dashboard (shipped ones: admins); 409 if another save came first",
        "dashboards",
        schema,
        allow=EDITS,
        params=[VERSION_PARAM],
        answer=ONE,
    )
    def update_dashboard(id: str):
        current = found(id)
        may_write(current.access)
        body = document_body(api)
        body_access(body)
        base = base_version()
        who = g.identity
        return one(guarded(lambda: library.update(id, body, who.name, base, who.sees_everything)))

    @api.route(
        "DELETE",
        "/dashboards/{id}",
        "Delete a dashboard and its versions (a shipped one goes back to as it shipped: admins)",
        "dashboards",
        allow=EDITS,
        answer={"deleted": {"type": "string"}},
    )
    def delete_dashboard(id: str):
        may_write(found(id).access)
        guarded(lambda: library.delete(id, g.identity.sees_everything))
        return {"deleted": id}

    @api.route(
        "POST",
        "/dashboards/{id}/clone",
        'Copy a dashboard under a new id (and title): {"id": ..., "title": ...}, both optional',
        "dashboards",
        {"type": "object", "properties": {"id": {"type": "string"}, "title": {"type": "string"}}},
        status=201,
        allow=EDITS,
        answer=ONE,
    )
    def clone_dashboard(id: str):
        source = found(id)
        may_write(source.access)
        body = api.json_body() if request.get_data(cache=True) else {}
        if not isinstance(body, dict):
            raise ApiError("the body must be an object with id and title, both optional", field="body")
        title = body.get("title") or f"{source.title} (copy)"
        new_id = body.get("id") or library.free_id(f"{source.id}-copy")
        data = {**document(source), "id": new_id, "title": title}
        return one(guarded(lambda: library.create(data, g.identity.name, f"cloned from {id}"))), 201

    @api.route(
        "GET",
        "/dashboards/{id}/versions",
        "A dashboard's kept versions, newest first: who saved each and when",
        "dashboards",
        allow=Permission(dashboard="path"),
        answer={"versions": {"type": "array"}, "version": {"type": "integer"}},
    )
    def dashboard_versions(id: str):
        found(id)
        return {"id": id, "version": library.version(id), "versions": guarded(lambda: library.versions(id))}

    @api.route(
        "GET",
        "/dashboards/{id}/versions/{version}",
        "A dashboard as it was at one version",
        "dashboards",
        allow=Permission(dashboard="path"),
        answer=ONE,
    )
    def dashboard_at_version(id: str, version: str):
        found(id)
        if not version.isdigit():
            raise ApiError(f"version must be a whole number, not {version[:40]!r}", field="version")
        old = guarded(lambda: library.at_version(id, int(version)))
        return {"dashboard": old.model_dump(mode="json"), "version": int(version), "id": id}

    @api.route(
        "POST",
        "/dashboards/{id}/versions/{version}/restore",
        "Save an earlier version again as the newest (the versions between are kept)",
        "dashboards",
        allow=EDITS,
        params=[VERSION_PARAM],
        answer=ONE,
    )
    def restore_dashboard(id: str, version: str):
        may_write(found(id).access)
        if not version.isdigit():
            raise ApiError(f"version must be a whole number, not {version[:40]!r}", field="version")
        who, base = g.identity, base_version()
        return one(guarded(lambda: library.restore(id, int(version), who.name, base, who.sees_everything)))

    @api.route(
        "POST",
        "/dashboards/import",
        "Import a Grafana dashboard (its JSON as grafana.com or Grafana's export gives it) as a new "
        "dashboard; answers its id and a report of how each panel was mapped",
        "dashboards",
        {"type": "object", "description": 'A Grafana dashboard JSON (or {"dashboard": ...})'},
        status=201,
        allow=EDITS,
        params=[
            {
                "name": "id",
                "in": "query",
                "schema": {"type": "string"},
                "description": "Default: from the title",
            },
            {
                "name": "access",
                "in": "query",
                "schema": {"type": "string"},
                "description": "Default: operations",
            },
            {"name": "title", "in": "query", "schema": {"type": "string"}},
        ],
        answer={"id": {"type": "string"}, "url": {"type": "string"}, "report": {"type": "object"}},
    )
    def import_grafana():
        body = api.json_body()
        access = request.args.get("access") or "operations"
        if access not in ACCESS_LEVELS:
            raise ApiError(
                f"access must be one of {', '.join(ACCESS_LEVELS)}, not {access[:40]!r}", field="access"
            )
        may_write(access)
        try:
            imported = grafana.read(body, None, access)
        except grafana.GrafanaError as exc:
            raise ApiError(str(exc), field="body") from None
        wanted = request.args.get("id")
        title = request.args.get("title")
        if title:
            imported.dashboard["title"] = title[:200]
        imported.dashboard["id"] = wanted or library.free_id(imported.dashboard["title"])
        dashboard = guarded(
            lambda: library.create(imported.dashboard, g.identity.name, "imported from Grafana")
        )
        report = import_report(imported)
        return {"id": dashboard.id, "url": f"/{dashboard.id}", "report": report, **one(dashboard)}, 201

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


def import_report(imported: grafana.Imported) -> dict:
    """What an import made of each Grafana panel and variable, with counts."""
    return {
        "panels": imported.panels,
        "variables": imported.variables,
        "mapped": sum(1 for p in imported.panels if p["mapped"]),
        "as_text": sum(1 for p in imported.panels if p["id"] and not p["mapped"]),
        "left_out": sum(1 for p in imported.panels if not p["id"]),
    }
