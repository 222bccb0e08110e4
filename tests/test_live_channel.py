"""The live WebSocket channel: it streams panel points, answers pings and enforces the connection cap."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as live

from dashboard_app.live.connections import ConnectionPool, PoolFull
from dashboard_app.runtime import Runtime
from tests.servers import closed_with, quiet_settings, serving
from tsdb.metrics import Sample

CPU = "pulseboard_system_cpu_usage_ratio"


def ws_url(pb, dashboard: str) -> str:
    return pb.url.replace("http://", "ws://") + f"/api/v1/monitoring/ws/dashboard/{dashboard}"


def receive(client: ClientConnection, kind: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(client.recv(timeout=max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            break
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message within {timeout} s")


@pytest.fixture
def live_pb(tmp_path):
    runtime = Runtime(quiet_settings(server__max_connections="1", dashboards__refresh="1"), tmp_path)
    with serving(runtime) as pb:
        yield pb
    runtime.archive.close()


def test_a_viewer_gets_points_then_new_points(live_pb):
    store = live_pb.runtime.store
    now = time.time()
    store.append(Sample(CPU, (), 0.25, now - 30 + i) for i in range(20))
    client = live(ws_url(live_pb, "operations"))
    try:
        hello = receive(client, "hello")
        assert hello["dashboard"] == "operations" and hello["refresh"] == 1
        first = receive(client, "update")
        points = first["panels"]["cpu-total"]["all cores"]
        assert points and all(v == 0.25 for _, v in points)
        store.append([Sample(CPU, (), 0.75, time.time())])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            update = receive(client, "update")
            newest = update["panels"]["cpu-total"].get("all cores", [])
            if any(v == 0.75 for _, v in newest):
                break
        else:
            raise AssertionError("the new CPU point never arrived")
        client.send(json.dumps({"type": "ping"}))
        assert receive(client, "pong")["time"] > 0
    finally:
        client.close()


def test_a_viewer_streams_only_the_host_its_variable_chose(tmp_path):
    runtime = Runtime(quiet_settings(dashboards__refresh="1"), tmp_path)
    now = time.time()
    for host, value in (("a", 0.2), ("b", 0.8)):
        runtime.store.append(Sample(CPU, (("instance", host),), value, now - 30 + i) for i in range(20))
    with serving(runtime) as pb:
        client = live(ws_url(pb, "operations") + "?instance=b")
        try:
            assert receive(client, "hello")["variables"] == {"instance": "b"}
            [points] = receive(client, "update")["panels"]["cpu-total"].values()
            assert points and all(v == 0.8 for _, v in points)  # host a's series is not streamed
        finally:
            client.close()
    runtime.archive.close()


def test_the_connection_cap_is_enforced_with_a_reason(live_pb):
    first = live(ws_url(live_pb, "operations"))
    try:
        receive(first, "hello")
        second = live(ws_url(live_pb, "operations"))
        code, reason = closed_with(second)
        assert code == 1013 and "1 live connections" in reason
    finally:
        first.close()
    # The slot frees when the first viewer leaves.
    deadline = time.monotonic() + 10
    while len(live_pb.runtime.connections) and time.monotonic() < deadline:
        time.sleep(0.1)
    third = live(ws_url(live_pb, "operations"))
    try:
        assert receive(third, "hello")["dashboard"] == "operations"
    finally:
        third.close()


def test_an_unknown_dashboard_is_closed_with_a_reason(live_pb):
    client = live(ws_url(live_pb, "nope"))
    code, reason = closed_with(client)
    assert code == 1008 and "nope" in reason


def test_closing_a_connection_through_the_api_ends_the_stream(live_pb):
    client = live(ws_url(live_pb, "operations"))
    hello = receive(client, "hello")
    assert live_pb.call("DELETE", f"/dashboards/connections/{hello['connection_id']}").status_code == 200
    with pytest.raises(ConnectionClosed):
        while True:
            client.recv(timeout=10)
            client.send(json.dumps({"type": "ping"}))


def test_streamed_ratios_are_the_ratios_the_page_shows(tmp_path):
    runtime = Runtime(quiet_settings(dashboards__refresh="1"), tmp_path)
    now = time.time()
    samples = []
    for i in range(60):  # 10 sessions and 1 conversion every 5 s: a 10 % conversion rate
        t = now - 300 + 5 * i
        samples += [
            {"name": "pulseboard_business_sessions_total", "value": 10, "timestamp": t},
            {"name": "pulseboard_business_conversions_total", "value": 1, "timestamp": t},
        ]
    runtime.metrics.record(samples)
    with serving(runtime) as pb:
        client = live(ws_url(pb, "executive"))
        try:
            receive(client, "hello")
            points = receive(client, "update")["panels"]["conversion-rate"]
            [values] = [[v for _, v in p] for p in points.values()]
            assert values and all(abs(v - 0.1) < 1e-9 for v in values[-10:])
        finally:
            client.close()
    runtime.archive.close()


def test_idle_connections_are_dropped_and_free_their_slot(clock):
    pool = ConnectionPool(cap=1, clock=clock, idle_timeout=120)
    first = pool.open("operations", "websocket")
    with pytest.raises(PoolFull, match="1 live connections"):
        pool.open("operations", "rest")
    clock.advance(100)
    assert pool.touch(first.id)  # a sign of life keeps it
    clock.advance(100)
    assert pool.alive(first.id)
    clock.advance(121)
    assert not pool.alive(first.id) and len(pool) == 0
    assert pool.open("executive", "rest").dashboard == "executive"


def test_pings_do_not_bring_more_updates_than_one_a_refresh(live_pb):
    client = live(ws_url(live_pb, "operations"))
    try:
        receive(client, "hello")
        receive(client, "update")  # the first one, with recent history
        updates, pongs = 0, 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            client.send(json.dumps({"type": "ping"}))
            kind = json.loads(client.recv(timeout=5))["type"]
            updates += kind == "update"
            pongs += kind == "pong"
        assert pongs > 10  # every ping answered at once
        assert updates <= 4  # at a 1 s refresh, over 3 s
    finally:
        client.close()
