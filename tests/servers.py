"""Run a Pulseboard app on a real 127.0.0.1 port inside the test process, and stop it after."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from flask import Flask
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from werkzeug.serving import make_server

from dashboard_app.api.frame import PREFIX as API
from dashboard_app.runtime import Runtime
from dashboard_app.server import create_app
from dashboard_app.settings import load_settings


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Running:
    """A runtime being served, and the base URL it answers on."""

    runtime: Runtime
    url: str
    flask: Flask

    def call(
        self, method: str, path: str, body=None, raw: bytes | None = None, **kwargs
    ) -> requests.Response:
        """Send a request to an API path under /api/v1/monitoring (or a full path starting with /)."""
        url = self.url + (path if path.startswith("/api/v1/openapi") or path == "/metrics" else API + path)
        if raw is not None:
            kwargs["data"] = raw
            kwargs.setdefault("headers", {"Content-Type": "application/json"})
        elif body is not None:
            kwargs["json"] = body
        return requests.request(method, url, timeout=10, **kwargs)


def quiet_settings(**overrides: str):
    """Development settings without the demo, with PULSEBOARD_* style overrides."""
    environ = {"PULSEBOARD_DEMO": "false", **{f"PULSEBOARD_{k.upper()}": v for k, v in overrides.items()}}
    return load_settings("development", environ=environ)


@contextmanager
def serving(runtime: Runtime, port: int = 0):
    """Serve a runtime's app over HTTP (on a free port unless one is given)."""
    app = create_app(runtime)
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pulseboard-test-server", daemon=True)
    thread.start()
    try:
        yield Running(runtime, f"http://127.0.0.1:{server.server_port}", app.server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


ROOT = Path(__file__).resolve().parent.parent


def launch(argv: list[str], environ: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """Start a process whose output goes to a file (``output(proc)`` reads it).

    Not a pipe: a server logs a line a request, and a pipe nobody reads fills and stops it.
    """
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        argv, cwd=cwd or ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    proc.log = log
    return proc


def output(proc: subprocess.Popen) -> str:
    """Everything a process started here has printed so far."""
    proc.log.seek(0)
    return proc.log.read()


def start(data_dir: Path, port: int, **env) -> subprocess.Popen:
    """Start `python app.py` as a newcomer would, collecting every second."""
    environ = {
        **os.environ,
        "PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL": "1",
        "PULSEBOARD_STORE__FLUSH_INTERVAL": "1",
        **env,
    }
    return launch([sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir)], environ)


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> int:
    """Wait until a URL answers; fail at once if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            printed = output(proc) if hasattr(proc, "log") else ""
            raise AssertionError(f"{proc.args[0]} exited early:\n{printed}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no answer from {url}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    """Signal the process and wait for it (killing it after 20 s).

    SIGKILL goes to the server's worker too, at once, as a crash or an out-of-memory kill takes both.
    """
    if sig == signal.SIGKILL:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


class Pusher:
    """Push batches of increments of a counter as fast as the server answers, counting the samples
    it acknowledged, until stopped or the server is gone."""

    def __init__(self, url: str, name: str, batch: int = 50):
        self.url = f"{url}{API}/metrics/custom/record"
        self.body = {"samples": [{"name": name, "value": 1}] * batch}
        self.acknowledged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._push, name="pusher", daemon=True)
        self._thread.start()

    def _push(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                if session.post(self.url, json=self.body, timeout=5).ok:
                    self.acknowledged += len(self.body["samples"])
            except requests.RequestException:
                return  # the server is gone

    def wait_for(self, count: int, timeout: float = 20) -> int:
        """Wait until ``count`` samples are acknowledged (or the time is up); return how many are."""
        deadline = time.monotonic() + timeout
        while self.acknowledged < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acknowledged

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return self.acknowledged


PROMETHEUS = shutil.which("prometheus")


def start_agent(port: int, **env: str) -> subprocess.Popen:
    """Start `python app.py agent` collecting every second, as a host would run it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    return launch(
        [sys.executable, "app.py", "agent", "--port", str(port)],
        {**environ, "PULSEBOARD_SYSTEM_INTERVAL": "1", **env},
    )


REPLICA_ADMIN_PASSWORD = "correct-horse-battery"


def start_replica(port: int, data_dir: Path, prometheus: str, **env: str) -> subprocess.Popen:
    """Start a replica with the README's production command, reading from Prometheus (``env``: more
    PULSEBOARD_ settings, its database.url among them); the same secrets on every replica."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    environ.update(
        PULSEBOARD_ENV="production",
        PULSEBOARD_DATA_DIR=str(data_dir),
        PULSEBOARD_SOURCE="prometheus",
        PULSEBOARD_PROMETHEUS_URL=prometheus,
        PULSEBOARD_PROMETHEUS__SCRAPE_INTERVAL="1",
        PULSEBOARD_SECRET_KEY="k" * 48,  # sessions are signed cookies: every replica has the same key
        PULSEBOARD_ADMIN_PASSWORD=REPLICA_ADMIN_PASSWORD,
        **env,
    )
    command = [sys.executable, "-m", "gunicorn", "-c", "python:dashboard_app.production"]
    return launch([*command, "--bind", f"127.0.0.1:{port}", "app:server"], environ)


@contextmanager
def prometheus_server(
    tmp_path: Path,
    targets: dict[str, str],
    job: str = "node",
    extra: str = "",
    flags: tuple[str, ...] = (),
    evaluation_interval: str = "1m",
    retention: str = "1h",
):
    """Run the real Prometheus on 127.0.0.1, scraping each target every second under its instance name.

    ``extra`` is more of its configuration file (a ``remote_write:`` section; ``{self}`` stands for the
    server's own address); ``flags`` more of its command line. Yields its base URL; the server is stopped
    (by its PID) on the way out. Rules are evaluated every ``evaluation_interval``, which is also the step
    of a subquery that names none.
    """
    assert PROMETHEUS, "prometheus is installed by `make test` (Debian package prometheus)"
    port = free_port()
    static = "".join(
        f"      - targets: ['{address}']\n        labels: {{instance: '{instance}'}}\n"
        for instance, address in targets.items()
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: {evaluation_interval}}}\n"
        + (f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n{static}" if targets else "")
        + extra.replace("{self}", f"127.0.0.1:{port}")
    )
    argv = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
        *flags,
    ]
    with _running(argv, f"http://127.0.0.1:{port}/-/ready"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def _running(argv: list[str], ready_url: str):
    """Start a server, wait until ``ready_url`` answers, and stop it (by its PID) on the way out."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(ready_url, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def prometheus_query(url: str, expr: str, at: float | None = None) -> list[dict]:
    """Return the result vector of an instant query against a Prometheus server."""
    params = {"query": expr} if at is None else {"query": expr, "time": at}
    response = requests.get(f"{url}/api/v1/query", params=params, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


NODE_EXPORTER = shutil.which("prometheus-node-exporter")


@contextmanager
def node_exporter():
    """Run Debian's real node_exporter on a free 127.0.0.1 port; yield its /metrics URL, stop it after."""
    assert NODE_EXPORTER, "prometheus-node-exporter is installed by `make test` (Debian package)"
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with _running([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"], url):
        yield url


def logged_in(url: str, user: str, password: str) -> requests.Session:
    """Return a session logged in as a browser would be (sending Pulseboard's Origin)."""
    http = requests.Session()
    http.headers["Origin"] = url
    answer = http.post(url + "/login", data={"user": user, "password": password}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return http


def api_key(admin: requests.Session, url: str, scopes: list[str]) -> str:
    """Make an API key through an admin's session; return the key."""
    made = admin.post(url + API + "/keys", json={"name": "-".join(scopes), "scopes": scopes}, timeout=10)
    assert made.status_code == 201, made.text
    return made.json()["key"]


def latest_by_labels(http: requests.Session, url: str, selector: str) -> dict:
    """Return {sorted label pairs: newest value} of the series a selector matches (/metrics/latest)."""
    answer = http.get(url + API + "/metrics/latest", params={"query": selector}, timeout=10).json()
    return {tuple(sorted(s["labels"].items())): s["value"] for s in answer["series"]}


def closed_with(ws: ClientConnection, timeout: float = 10) -> tuple[int, str]:
    """Read a live connection until the server closes it: the close code and the reason it gave."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    assert found, "PostgreSQL is installed by `make test` (Debian package postgresql)"
    return found[-1]


@contextmanager
def postgres_cluster():
    """A PostgreSQL cluster made in a temporary directory, on a free 127.0.0.1 port, run as the postgres
    user and stopped on the way out; yields the URL of its database ``pulseboard``."""
    root = Path(tempfile.mkdtemp(prefix="pulseboard-postgres-"))  # outside pytest's root-only directories
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    shutil.chown(root, "postgres", "postgres")
    shutil.chown(sockets, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, _postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockets}"
    pg_ctl = [*as_postgres, _postgres_bin("pg_ctl"), "-D", str(data)]
    start = [*pg_ctl, "-l", str(root / "log"), "-o", options, "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield new_database(f"postgresql://postgres@127.0.0.1:{port}/postgres", "pulseboard")
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def new_database(base: str, name: str | None = None) -> str:
    """Make an empty database on the server of ``base`` (a postgresql:// URL); return its URL."""
    from sqlalchemy import create_engine, text

    name = name or f"t{os.getpid()}_{int(time.time() * 1e6)}"
    server = base.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0]
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"
