"""The live channel: a WebSocket per dashboard viewer that streams each panel's new points."""

from __future__ import annotations

import json
import logging
import math
import socket
import time

from flask import Flask, Response, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from dashboard_app.access.origin import foreign_origin
from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import ScopedSource, reads
from dashboard_app.live.connections import PoolFull
from dashboard_app.pages.panels import narrow_dashboard, query_frame
from dashboard_app.pages.views import newest
from dashboard_app.runtime import Runtime
from ingest.paths import API_PREFIX
from layouts.schema import Dashboard, Panel

log = logging.getLogger(__name__)
PATH = API_PREFIX + "/ws/dashboard/<dashboard_id>"
FIRST_WINDOW = 300.0  # seconds of history the first message carries
CLOSE_TRY_LATER = 1013
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001


def panel_points(source: ScopedSource, dashboard: Dashboard, start: float, end: float, step: float) -> dict:
    """Return {panel id: {series: [[ms, value], ...]}} for every panel over [start, end].

    A panel of metrics the reader may not see stays empty.
    """
    return {panel.id: points_of(source, panel, start, end, step) for panel in dashboard.panels}


def points_of(source: ScopedSource, panel: Panel, start: float, end: float, step: float) -> dict:
    """Return {series: [[ms, value], ...]} of one panel over [start, end]."""
    series = {}
    panel_step = max(step, panel.step or 0.0, source.min_step)
    for q in panel.queries:  # the same query path as the pages: over, scale and smooth apply
        if not all(source.visible(name) for name in q.compiled.metrics):
            continue
        frame = query_frame(source, q, start, end, panel_step)
        if frame.empty:
            continue
        times = frame.index.as_unit("ms").asi8.tolist()
        for column in frame.columns:
            points = [[t, v] for t, v in zip(times, frame[column].tolist()) if math.isfinite(v)]
            if points:
                series[str(column)] = points
    return series


class SharedUpdates:
    """Compute a dashboard's update once per refresh tick, whatever the number of viewers.

    Each panel's points come from the answers every viewer shares, computed again only when a
    new sample arrived for the panel's series.
    """

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.cache = runtime.answers

    def message(
        self, source: ScopedSource, dashboard: Dashboard, refresh: float, chosen: dict[str, str]
    ) -> str:
        """Return the update of the current tick: the points of the last two refresh periods.

        ``dashboard`` is already narrowed by the variables in ``chosen``: viewers who chose the
        same values, and may read the same levels, share one update.
        """
        now = self.runtime.clock()
        tick = math.floor(now / refresh)
        view = (dashboard.id, refresh, tuple(sorted(chosen.items())), source.levels)

        def compute() -> str:
            end = (tick + 1) * refresh  # the tick's edge: every viewer of the tick asks the same
            panels = {}
            for panel in dashboard.panels:
                key = ("points", *view, panel.id, end, newest(source, panel))
                panels[panel.id] = self.cache.get(
                    key,
                    lambda panel=panel: points_of(source, panel, end - 3 * refresh, end, refresh),
                    lambda series: 200 + 40 * sum(len(v) for v in series.values()),
                )
            return json.dumps({"type": "update", "time": now, "panels": panels})

        return self.cache.get(("update", *view, tick), compute)


def attach(server: Flask, runtime: Runtime, permissions: Permissions) -> None:
    """Serve the live channel on the Flask server."""
    settings = runtime.settings
    server.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": 20,  # protocol pings find dead peers
        "max_message_size": settings.server.max_frame_bytes,  # a bigger frame closes the connection
    }
    sock = Sock(server)
    pool = runtime.connections
    shared = SharedUpdates(runtime)
    permissions.route(PATH, ("GET",), Permission(dashboard="path", series="dashboard"))

    @server.before_request
    def _same_site_upgrades():
        # A browser always names the page that opens a WebSocket: one from another site is refused,
        # so a page elsewhere cannot read a logged-in user's dashboards (cross-site WebSocket hijacking).
        if request.url_rule is not None and request.url_rule.rule == PATH and foreign_origin():
            return Response("live connections are only accepted from Pulseboard's own pages", 403)
        return None

    @sock.route(PATH)
    def live(ws, dashboard_id: str):
        try:
            _stream(ws, dashboard_id)
        finally:
            _end(ws)

    def _stream(ws, dashboard_id: str) -> None:
        dashboard = runtime.dashboards.get(dashboard_id)
        if dashboard is None:
            ws.close(CLOSE_POLICY, f"no dashboard {dashboard_id!r}")
            return
        source = reads().pages
        try:
            conn = pool.open(dashboard_id, "websocket", g.identity.name)
        except PoolFull as exc:
            ws.close(CLOSE_TRY_LATER, f"{exc}; try again later")
            return
        refresh = dashboard.refresh or settings.dashboards.refresh or 5
        # The dashboard's variables come as query parameters, as on the page: ?instance=host-a.
        chosen = dashboard.chosen(request.args)
        dashboard = narrow_dashboard(dashboard, chosen)
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
                        "variables": chosen,
                    }
                )
            )
            # The first update carries recent history; later ones the last two periods, shared by
            # every viewer of the dashboard. A point at a time already sent replaces it.
            points = panel_points(source, dashboard, now - FIRST_WINDOW, now, refresh)
            ws.send(json.dumps({"type": "update", "time": now, "panels": points}))
            # Updates go out once a refresh period, however often the client sends messages.
            due = time.monotonic() + refresh
            while True:
                message = ws.receive(timeout=max(0.0, due - time.monotonic()))
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
                if time.monotonic() >= due:
                    ws.send(shared.message(source, dashboard, refresh, chosen))
                    due = max(due + refresh, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            pool.close(conn.id)


def _end(ws) -> None:
    """End the TCP connection once the close handshake is done, as the server should (RFC 6455 7.1.1).

    Otherwise the built-in server waits on the socket for another request while the client waits for
    the server to close it, and the client learns of the close only after its own timeout.
    """
    ws.thread.join(timeout=2)  # the client's close frame in answer to ours
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


def _is_ping(message) -> bool:
    try:
        return json.loads(message).get("type") == "ping"
    except (ValueError, AttributeError):
        return False
