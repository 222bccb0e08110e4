"""Slow and idle clients cannot starve the production server: `pulseboard serve --env production`."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import requests
from websockets.sync.client import connect as live

from tests.servers import free_port, launch, output, stop, wait_http

API = "/api/v1/monitoring"
SECRETS = {"PULSEBOARD_SECRET_KEY": "k" * 48, "PULSEBOARD_ADMIN_PASSWORD": "a long passphrase of our own"}


def production(data_dir, port: int):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    argv = [
        sys.executable,
        "app.py",
        "serve",
        "--env",
        "production",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    return launch(argv, {**environ, **SECRETS, "PULSEBOARD_DEMO": "false"})


def test_a_thousand_slow_and_idle_connections_delay_no_page_push_or_health_check(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = production(tmp_path, port)
    held: list[socket.socket] = []
    try:
        wait_http(url + "/-/healthy", proc)
        assert "development server" not in output(proc)  # the production server, not Werkzeug's
        admin = requests.Session()
        admin.headers["Origin"] = url
        login = {"user": "admin", "password": SECRETS["PULSEBOARD_ADMIN_PASSWORD"]}
        assert admin.post(url + "/login", data=login, allow_redirects=False).status_code == 302
        made = admin.post(url + API + "/keys", json={"name": "shop", "scopes": ["ingest"]}, timeout=10)
        key = {"Authorization": "Bearer " + made.json()["key"]}
        register = {"name": "shop_orders_total", "type": "counter", "help": "Orders"}
        assert requests.post(url + API + "/metrics/custom/register", json=register, headers=key).ok

        for i in range(1000):
            sock = socket.create_connection(("127.0.0.1", port))
            if i % 2:  # half send a partial header, the other half nothing at all
                sock.sendall(b"GET /operations HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        for _ in range(3):  # and keep trickling, one byte a second, for longer than any thread would wait
            time.sleep(1)
            for sock in held[1::2]:
                sock.sendall(b"a")
            assert requests.get(url + "/-/healthy", timeout=5).status_code == 200
            assert admin.get(url + "/operations", timeout=5).status_code == 200
            push = {"samples": [{"name": "shop_orders_total", "value": 1}]}
            assert requests.post(url + API + "/metrics/custom/record", json=push, headers=key, timeout=5).ok
        body = b'{"samples": [{"name": "shop_orders_total", "value": 2}]}'
        slow_body = socket.create_connection(("127.0.0.1", port))  # a body sent one byte at a time
        slow_body.sendall(
            b"POST "
            + API.encode()
            + b"/metrics/custom/record HTTP/1.1\r\nHost: x\r\n"
            + b"Authorization: "
            + key["Authorization"].encode()
            + b"\r\nContent-Type: application/json\r\n"
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        for byte in body:
            slow_body.sendall(bytes([byte]))
            assert requests.get(url + "/-/healthy", timeout=5).status_code == 200
        slow_body.settimeout(10)
        assert slow_body.recv(100).startswith(b"HTTP/1.1 200")  # answered once whole
        slow_body.close()
        latest = requests.get(
            url + API + "/metrics/latest", params={"query": "shop_orders_total"}, headers=key
        )
        assert latest.status_code in (401, 403)  # an ingest key does not read; the admin does
        [series] = admin.get(url + API + "/metrics/latest", params={"query": "shop_orders_total"}).json()[
            "series"
        ]
        assert series["value"] == 5.0
        huge = socket.create_connection(("127.0.0.1", port))
        huge.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 70_000)
        huge.settimeout(10)
        assert huge.recv(100).startswith(b"HTTP/1.1 431")
        huge.close()
    finally:
        for sock in held:
            sock.close()
        stop(proc)


def test_the_live_channel_streams_through_the_production_server_beside_slow_clients(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    argv = [sys.executable, "app.py", "serve", "--port", str(port), "--data-dir", str(tmp_path)]
    proc = launch(
        argv, {**environ, "PULSEBOARD_DEMO": "false", "PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL": "1"}
    )
    held = []
    try:
        wait_http(url + "/-/healthy", proc)
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            held.append(sock)
        client = live(url.replace("http://", "ws://") + API + "/ws/dashboard/operations", origin=url)
        try:
            hello = json.loads(client.recv(timeout=10))
            assert hello["type"] == "hello" and hello["dashboard"] == "operations"
            client.send(json.dumps({"type": "ping"}))
            kinds = set()
            deadline = time.monotonic() + 15
            while {"update", "pong"} - kinds and time.monotonic() < deadline:
                kinds.add(json.loads(client.recv(timeout=15))["type"])
            assert {"update", "pong"} <= kinds
        finally:
            client.close()
    finally:
        for sock in held:
            sock.close()
        stop(proc)
