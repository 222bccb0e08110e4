"""The live channel: a WebSocket per dashboard viewer that streams each panel's new points."""

from __future__ import annotations

import json
import logging
import math

from flask import Flask
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from dashboard_app.connections import PoolFull
from dashboard_app.runtime import Runtime
from layouts.schema import Dashboard

log = logging.getLogger(__name__)
PATH = "/api/v1/monitoring/ws/dashboard/<dashboard_id>"
FIRST_WINDOW = 300.0  # seconds of history the first message carries
CLOSE_TRY_LATER = 1013
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001


def panel_points(runtime: Runtime, dashboard: Dashboard, start: float, end: float, step: float) -> dict:
    """Return {panel id: {series: [[ms, value], ...]}} for every panel over [start, end]."""
    out = {}
    for panel in dashboard.panels:
        series = {}
        for q in panel.queries:
            frame = runtime.source.query(q.expr, start, end, step, q.agg, q.legend)
            if frame.empty:
                continue
            times = frame.index.as_unit("ms").asi8.tolist()
            for column in frame.columns:
                points = [[t, v * q.scale] for t, v in zip(times, frame[column].tolist()) if math.isfinite(v)]
                if points:
                    series[str(column)] = points
        out[panel.id] = series
    return out


def attach(server: Flask, runtime: Runtime) -> None:
    """Serve the live channel on the Flask server."""
    server.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 20}  # protocol pings find dead peers
    sock = Sock(server)
    pool, settings = runtime.connections, runtime.settings

    @sock.route(PATH)
    def live(ws, dashboard_id: str):
        dashboard = runtime.dashboards.get(dashboard_id)
        if dashboard is None:
            ws.close(CLOSE_POLICY, f"no dashboard {dashboard_id!r}")
            return
        try:
            conn = pool.open(dashboard_id, "websocket")
        except PoolFull as exc:
            ws.close(CLOSE_TRY_LATER, f"{exc}; try again later")
            return
        refresh = dashboard.refresh or settings.dashboards.refresh or 5
        try:
            now = runtime.clock()
            ws.send(
                json.dumps(
                    {
                        "type": "hello",
                        "connection_id": conn.id,
                        "dashboard": dashboard_id,
                        "refresh": refresh,
                        "idle_timeout": pool.idle_timeout,
                    }
                )
            )
            since = now - FIRST_WINDOW
            while True:
                now = runtime.clock()
                points = panel_points(runtime, dashboard, since, now, refresh)
                ws.send(json.dumps({"type": "update", "time": now, "panels": points}))
                since = now - refresh  # the newest bucket may still fill: send it again, it replaces
                message = ws.receive(timeout=refresh)
                while message is not None:
                    if not pool.touch(conn.id):
                        ws.close(CLOSE_GOING_AWAY, "connection closed for being idle or by request")
                        return
                    if _is_ping(message):
                        ws.send(json.dumps({"type": "pong", "time": runtime.clock()}))
                    message = ws.receive(timeout=0)
                if not pool.alive(conn.id):
                    ws.close(CLOSE_GOING_AWAY, "no message from the client within the idle timeout")
                    return
        except ConnectionClosed:
            pass
        finally:
            pool.close(conn.id)


def _is_ping(message) -> bool:
    try:
        return json.loads(message).get("type") == "ping"
    except (ValueError, AttributeError):
        return False
