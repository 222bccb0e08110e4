"""CSV endpoints: a streamed query export for scripts, a panel's CSV and a dashboard's zip for people."""

from __future__ import annotations

from flask import Response, request, stream_with_context

from dashboard_app.access.permissions import Permission
from dashboard_app.access.scoped import reads
from dashboard_app.analysis.csv_export import dashboard_zip, panel_csv, query_csv, stream_query
from dashboard_app.api.frame import Api, ApiError, parse_step, parse_time, query_number
from dashboard_app.pages.panels import Window, narrow_dashboard, narrow_panel
from dashboard_app.runtime import Runtime
from layouts.components import RANGE_SECONDS
from layouts.schema import PanelQuery
from tsdb.aggregator import AGGREGATIONS

MAX_ROWS = 10_000_000  # a year of 3 s steps; a step that asks for more is refused


def _param(name: str, schema: dict, required: bool = False, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


TIME = {"type": "string"}
WINDOW_PARAMS = [
    _param("range", {"type": "string", "enum": list(RANGE_SECONDS)}, description="A range ending now"),
    _param("start", TIME, description="Unix seconds or RFC 3339, with end (instead of range)"),
    _param("end", TIME),
]


def _attachment(body, name: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def add_routes(api: Api, runtime: Runtime) -> None:
    """Register the CSV endpoints."""
    points = runtime.settings.dashboards.points

    def rows_asked() -> tuple[float, float, float]:
        """The start, end and step of a CSV export's rows, checked."""
        if "start" not in request.args:
            raise ApiError("start is required (Unix seconds or RFC 3339)", field="start")
        start = parse_time(request.args["start"], "start")
        end = parse_time(request.args.get("end") or runtime.clock(), "end")
        if end < start:
            raise ApiError("end must not be before start", field="end")
        step = parse_step(query_number("step", None))
        if (end - start) / step > MAX_ROWS:
            raise ApiError(f"at most {MAX_ROWS:,} rows: raise the step", field="step")
        return start, end, step

    def window() -> Window:
        key = request.args.get("range")
        now = runtime.clock()
        if key:
            if key not in RANGE_SECONDS:
                raise ApiError(f"range must be one of {', '.join(RANGE_SECONDS)}", field="range")
            return Window(now - RANGE_SECONDS[key], now)
        if "start" not in request.args:
            return Window(now - runtime.settings.dashboards.default_range, now)
        start = parse_time(request.args["start"], "start")
        end = parse_time(request.args.get("end") or now, "end")
        if end <= start:
            raise ApiError("end must be after start", field="end")
        return Window(start, end)

    @api.route(
        "GET",
        "/metrics/export.csv",
        "A range query as CSV (streamed): ISO 8601 UTC time, one column per series, units in the header",
        "export",
        params=[
            _param("query", TIME, True, "Series selector; repeat for more series"),
            _param("start", TIME, True),
            _param("end", TIME),
            _param("step", {"type": "number"}, True, "Seconds per row"),
            _param("agg", {"type": "string", "enum": list(AGGREGATIONS)}),
        ],
        allow=Permission("analyst", "read", series="query"),
        media="text/csv",
    )
    def export_query():
        selectors = request.args.getlist("query")
        if not selectors or not all(selectors):
            raise ApiError("query must be a series selector (repeat query= for more)", field="query")
        start, end, step = rows_asked()
        how = request.args.get("agg", "avg")
        if how not in AGGREGATIONS:
            raise ApiError(f"agg must be one of {', '.join(AGGREGATIONS)}", field="agg")
        mine = reads()
        lines = stream_query(
            mine.pages,
            selectors,
            start,
            end,
            step,
            how,
            lambda n: mine.pages.unit(n) or "none",
        )
        runtime.query_gate.acquire()  # held until the last row is sent (or the client goes away)
        try:
            first = next(lines)  # parses the selector now, so a bad one is a 400 rather than a broken stream
        except BaseException:
            runtime.query_gate.release()
            raise
        name = selectors[0].split("{")[0] if len(selectors) == 1 else "pulseboard-export"

        held = [True]

        def release() -> None:
            if held[0]:
                held[0] = False
                runtime.query_gate.release()

        def body():
            previous = first
            for line in lines:
                yield previous
                previous = line
            release()  # before the last row goes out: a client that has it all finds the slot free
            yield previous

        response = _attachment(stream_with_context(body()), f"{name}.csv", "text/csv")
        response.call_on_close(release)  # a client that goes away mid-stream frees it too
        return response

    @api.route(
        "GET",
        "/explore/export.csv",
        "A PromQL range query as CSV, as Explore draws it: ISO 8601 UTC time, one column per series",
        "export",
        params=[
            _param("query", {"type": "string"}, True, "PromQL"),
            _param("start", TIME, True),
            _param("end", TIME),
            _param("step", {"type": "number"}, True, "Seconds per row"),
        ],
        allow=Permission("analyst", "read", series="query"),
        media="text/csv",
    )
    def export_explore():
        promql = request.args.get("query", "")
        if not promql.strip():
            raise ApiError("query must be a PromQL expression", field="query")
        start, end, step = rows_asked()
        try:
            PanelQuery(expr=promql)
        except ValueError as exc:
            raise ApiError(str(exc).split("\n")[-1].strip(), field="query") from None
        with runtime.query_gate.slot():
            text = query_csv(reads().pages, promql, start, end, step)
        return _attachment(text, "explore.csv", "text/csv")

    def found(dashboard_id: str):
        dashboard = runtime.dashboards.get(dashboard_id)
        if dashboard is None:
            raise ApiError(
                f"no dashboard {dashboard_id!r}; known: {', '.join(runtime.dashboards)}", 404, "id"
            )
        return dashboard

    @api.route(
        "GET",
        "/dashboards/{id}/panels/{panel_id}/export.csv",
        "One panel's data for a time range, as the page draws it",
        "export",
        params=WINDOW_PARAMS,
        allow=Permission("analyst", "read", dashboard="path", series="dashboard"),
        media="text/csv",
    )
    def export_panel(id: str, panel_id: str):
        dashboard = found(id)
        panel = next((p for p in dashboard.panels if p.id == panel_id), None)
        if panel is None:
            known = ", ".join(p.id for p in dashboard.panels)
            raise ApiError(f"no panel {panel_id!r} on {id}; known: {known}", 404, "panel_id")
        panel = narrow_panel(panel, dashboard.chosen(request.args), dashboard.variables)
        text = panel_csv(reads().pages, panel, window(), points)
        return _attachment(text, f"{id}-{panel_id}.csv", "text/csv")

    @api.route(
        "GET",
        "/dashboards/{id}/export.zip",
        "Every panel of a dashboard as CSV files in one zip",
        "export",
        params=WINDOW_PARAMS,
        allow=Permission("analyst", "read", dashboard="path", series="dashboard"),
        media="application/zip",
    )
    def export_dashboard(id: str):
        dashboard = found(id)
        return _attachment(
            dashboard_zip(
                reads().pages, narrow_dashboard(dashboard, dashboard.chosen(request.args)), window(), points
            ),
            f"{id}.zip",
            "application/zip",
        )
