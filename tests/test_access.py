"""Access control over real HTTP: roles and access levels, keys, refused callbacks, secrets, limits, audit."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dashboard_app.access.secrets import Secrets
from dashboard_app.runtime import Runtime
from tests.servers import ROOT, quiet_settings, serving
from tsdb.metrics import Sample

SECRETS = Secrets("s" * 48, "correct-horse-battery")
API = "/api/v1/monitoring"
PEOPLE = {
    "olga": ("operator", ["operations"]),
    "eddie": ("editor", ["operations"]),
    "vic": ("viewer", ["operations"]),
    "ann": ("analyst", ["executive"]),
}
PASSWORD = "a-long-enough-password"


class Client:
    """A logged-in browser-like session (sends Origin like a page would) or an API key holder."""

    def __init__(self, url: str, user: str | None = None, key: str | None = None):
        self.url = url
        self.http = requests.Session()
        self.http.headers["Origin"] = url
        if key:
            self.http.headers["Authorization"] = f"Bearer {key}"
        if user:
            password = SECRETS.admin_password if user == "admin" else PASSWORD
            answer = self.http.post(
                url + "/login", data={"user": user, "password": password}, allow_redirects=False
            )
            assert answer.status_code == 302, answer.text


@pytest.fixture
def secured(tmp_path):
    runtime = Runtime(quiet_settings(auth__enabled="true"), tmp_path, secrets=SECRETS)
    for name, (role, access) in PEOPLE.items():
        runtime.users.set(name, PASSWORD, role, access)
    now = time.time()
    runtime.store.append(
        Sample("pulseboard_system_cpu_usage_ratio", (), 0.4, now - 60 + i) for i in range(60)
    )
    runtime.store.append(
        Sample("pulseboard_business_sessions_total", (), float(i), now - 60 + i) for i in range(60)
    )
    with serving(runtime) as pb:
        yield pb
    runtime.archive.close()


def api(client: Client, method: str, path: str, **kwargs) -> int:
    return client.http.request(method, client.url + API + path, timeout=10, **kwargs).status_code


ONE_ORDER = {"samples": [{"name": "shop_orders_total", "value": 1}]}
RULE = {"id": "r1", "name": "R1", "query": "up", "condition": "<", "threshold": 1}
QUERY_BUSINESS = {"query": "pulseboard_business_sessions_total", "step": 60}
QUERY_SYSTEM = {"query": "pulseboard_system_cpu_usage_ratio", "step": 60}
WHO = ("vic", "ann", "eddie", "olga", "admin")
OPERATIONS_BOARD = {
    "id": "x",
    "title": "X, renamed",
    "access": "operations",
    "panels": [{"id": "p", "title": "P", "type": "line", "queries": [{"expr": "up"}]}],
}
EXECUTIVE_BOARD = {
    "id": "board",
    "title": "Board",
    "access": "executive",
    "panels": [
        {"id": "p", "title": "P", "type": "stat", "queries": [{"expr": "pulseboard_business_sessions_total"}]}
    ],
}


def test_the_role_matrix(secured):
    url = secured.url
    clients = {name: Client(url, name) for name in WHO}
    # (method, path, kwargs) -> expected status for vic, ann, eddie, olga, admin
    matrix = [
        ("GET", "/dashboards/operations", {}, (200, 403, 200, 200, 200)),
        ("GET", "/dashboards/executive", {}, (403, 200, 403, 403, 200)),
        ("GET", "/dashboards/executive/panels/revenue/export.csv", {}, (403, 200, 403, 403, 200)),
        ("GET", "/dashboards/operations/export.zip", {}, (403, 403, 200, 200, 200)),
        ("POST", "/metrics/query", {"json": QUERY_BUSINESS}, (403, 200, 403, 403, 200)),
        ("POST", "/metrics/query", {"json": QUERY_SYSTEM}, (200, 403, 200, 200, 200)),
        ("GET", "/analysis/trends", {"params": QUERY_SYSTEM}, (403, 403, 200, 200, 200)),
        (
            "GET",
            "/metrics/export.csv",
            {"params": {**QUERY_BUSINESS, "start": time.time() - 60}},
            (403, 200, 403, 403, 200),
        ),
        ("POST", "/alerts/rules", {"json": RULE}, (403, 403, 403, 201, 409)),
        ("GET", "/alerts/active", {}, (200, 200, 200, 200, 200)),
        (
            "POST",
            "/dashboards/create",
            {
                "json": {
                    "id": "x",
                    "title": "X",
                    "access": "operations",
                    "panels": [{"id": "p", "title": "P", "type": "line", "queries": [{"expr": "up"}]}],
                }
            },
            (403, 403, 201, 409, 409),  # editors and up, of the dashboard's level
        ),
        ("POST", "/dashboards/create", {"json": EXECUTIVE_BOARD}, (403, 403, 403, 403, 201)),
        (
            "PUT",
            "/dashboards/x",
            {"json": OPERATIONS_BOARD},
            (403, 403, 200, 200, 200),
        ),
        ("POST", "/keys", {"json": {"name": "k", "scopes": ["read"]}}, (403, 403, 403, 403, 201)),
        ("GET", "/audit", {}, (403, 403, 403, 403, 200)),
        ("GET", "/config/collector", {}, (403, 403, 403, 403, 200)),
        (
            "POST",
            "/metrics/custom/record",
            {"json": {"samples": []}},
            (403, 403, 403, 403, 403),
        ),  # pushes need a key
    ]
    failures = []
    for method, path, kwargs, expected in matrix:
        for name, want in zip(WHO, expected):
            got = api(clients[name], method, path, **kwargs)
            if got != want:
                failures.append(f"{name} {method} {path}: {got}, expected {want}")
    assert failures == []
    # Pages: another level's dashboard is refused, one's own is served; without a login, the login page.
    assert clients["vic"].http.get(url + "/executive", timeout=10).status_code == 403
    assert clients["vic"].http.get(url + "/operations", timeout=10).status_code == 200
    assert clients["vic"].http.get(url + "/trends", timeout=10).status_code == 403
    anonymous = requests.get(url + "/operations", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    assert requests.get(url + API + "/version", timeout=10).status_code == 401


PANELS = (  # the panels callback, by its outputs as the page names them
    '..{"dashboard":["ALL"],"panel":["ALL"],"type":"panel-graph"}.figure'
    '...{"dashboard":["ALL"],"type":"panel-render-state"}.data...nav-last-update.children..'
)
ROUTER = ".._pages_content.children..._pages_store.data.."


def test_a_forbidden_callback_is_refused_before_it_runs(secured):
    runtime = secured.runtime
    calls = []
    real = runtime.source.evaluate
    runtime.source.evaluate = lambda *a, **k: calls.append(a) or real(*a, **k)
    vic = Client(secured.url, "vic")
    outputs = [
        {"id": {"type": "panel-graph", "dashboard": "executive", "panel": "revenue"}, "property": "figure"}
    ]
    body = {
        "output": PANELS,
        "outputs": [
            outputs,
            [{"id": {"type": "panel-render-state", "dashboard": "executive"}, "property": "data"}],
            {"id": "nav-last-update", "property": "children"},
        ],
        "inputs": [{"id": "app-interval", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["app-interval.n_intervals"],
    }
    answer = vic.http.post(secured.url + "/_dash-update-component", json=body, timeout=10)
    assert answer.status_code == 403 and "executive" in answer.json()["error"]
    forged = vic.http.post(
        secured.url + "/_dash-update-component", json={**body, "output": "..forged.."}, timeout=10
    )
    assert forged.status_code == 403 and "declares no permission" in forged.json()["error"]
    router = {
        "output": ROUTER,
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/executive"}],
        "changedPropIds": ["_pages_location.pathname"],
    }
    assert vic.http.post(secured.url + "/_dash-update-component", json=router, timeout=10).status_code == 403
    assert calls == []  # no query ran for the refused callbacks


def test_keys_are_scoped_shown_once_revocable_and_never_in_a_url(secured):
    admin = Client(secured.url, "admin")
    made = admin.http.post(
        secured.url + API + "/keys", json={"name": "shop", "scopes": ["ingest"]}, timeout=10
    ).json()
    token = made["key"]
    assert token.startswith("pb_") and token not in json.dumps(
        admin.http.get(secured.url + API + "/keys", timeout=10).json()
    )
    database = Path(secured.runtime.database.url.database)
    kept = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert token.encode() not in kept and hashlib.sha256(token.encode()).hexdigest().encode() in kept
    shop = Client(secured.url, key=token)
    definition = {"name": "shop_orders_total", "type": "counter"}
    assert api(shop, "POST", "/metrics/custom/register", json=definition) == 201
    assert api(shop, "POST", "/metrics/custom/record", json=ONE_ORDER) == 200
    assert api(shop, "GET", "/dashboards/list") == 403  # ingest only
    assert (
        requests.get(secured.url + API + "/metrics/latest", params={"api_key": token}, timeout=10).status_code
        == 400
    )
    assert admin.http.delete(secured.url + API + f"/keys/{made['id']}", timeout=10).status_code == 200
    assert api(shop, "POST", "/metrics/custom/record", json=ONE_ORDER) == 401
    entries = admin.http.get(secured.url + API + "/audit", timeout=10).json()["entries"]
    assert any(e["who"] == "admin" and e["action"] == "DELETE" and made["id"] in e["target"] for e in entries)


def test_cookies_are_httponly_and_samesite(secured):
    ok = requests.post(
        secured.url + "/login",
        data={"user": "olga", "password": PASSWORD},
        headers={"Origin": secured.url},
        allow_redirects=False,
        timeout=10,
    )
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain HTTP here


def test_a_change_without_pulseboards_origin_is_refused(secured):
    olga = Client(secured.url, "olga")
    del olga.http.headers["Origin"]
    answer = olga.http.post(secured.url + API + "/alerts/rules", json=RULE, timeout=10)
    assert answer.status_code == 403 and "Origin" in answer.json()["error"]


def test_requests_past_the_rate_limit_get_429_with_retry_after(tmp_path):
    runtime = Runtime(quiet_settings(auth__enabled="true", auth__rate_limit="5"), tmp_path, secrets=SECRETS)
    with serving(runtime) as pb:
        admin = Client(pb.url, "admin")
        codes = [admin.http.get(pb.url + API + "/version", timeout=10) for _ in range(7)]
        assert [c.status_code for c in codes[:5]] == [200] * 5
        assert codes[-1].status_code == 429 and int(codes[-1].headers["Retry-After"]) >= 1
    runtime.archive.close()


def test_wrong_keys_and_anonymous_requests_are_limited_per_address_before_any_check(tmp_path):
    settings = quiet_settings(auth__enabled="true", auth__anonymous_rate_limit="20")
    runtime = Runtime(settings, tmp_path, secrets=SECRETS)
    with serving(runtime) as pb:
        wrong = {"Authorization": "Bearer not-a-key"}
        codes = [requests.get(pb.url + API + "/version", headers=wrong, timeout=10) for _ in range(15)]
        codes += [requests.get(pb.url + API + "/metrics/latest", timeout=10) for _ in range(10)]
        assert [c.status_code for c in codes[:20]] == [401] * 20
        assert {c.status_code for c in codes[20:]} == {429}
        assert int(codes[-1].headers["Retry-After"]) >= 1 and "without valid credentials" in codes[-1].text
    runtime.archive.close()


def test_logins_wait_for_the_one_password_check_at_a_time_and_are_told_to_come_back(secured):
    hashing = secured.runtime.users._hashing
    hashing.acquire()  # logins from elsewhere are being checked
    try:
        http = requests.Session()
        http.headers["Origin"] = secured.url
        busy = http.post(
            secured.url + "/login", data={"user": "vic", "password": PASSWORD}, allow_redirects=False
        )
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "2"
        assert "try again" in busy.text
    finally:
        hashing.release()
    assert Client(secured.url, "vic")  # and once it is free, the login goes through


@pytest.mark.parametrize(
    "env, words",
    [
        ({}, "PULSEBOARD_SECRET_KEY, PULSEBOARD_ADMIN_PASSWORD"),
        ({"PULSEBOARD_SECRET_KEY": "s" * 48, "PULSEBOARD_ADMIN_PASSWORD": "admin"}, "well-known or short"),
        (
            {"PULSEBOARD_SECRET_KEY": "short", "PULSEBOARD_ADMIN_PASSWORD": "correct-horse-battery"},
            "32 random",
        ),
    ],
)
def test_production_will_not_start_without_secrets(tmp_path, env, words):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    done = subprocess.run(
        [sys.executable, "app.py", "--env", "production", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,  # it refuses before opening a port; a hang would fail here
    )
    assert done.returncode == 2 and words in done.stderr


def fill(path: str) -> str:
    return (
        path.replace("{id}", "operations")
        .replace("{panel_id}", "cpu-total")
        .replace("{connection_id}", "none")
        .replace("{key_id}", "none")
    )


def test_every_route_needs_a_login_and_no_viewer_may_change_anything(secured):
    spec = Client(secured.url, "admin").http.get(secured.url + "/api/v1/openapi.json", timeout=10).json()
    routes = [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops]
    assert len(routes) >= 40
    vic = Client(secured.url, "vic")  # a viewer of operations
    viewer_may = {  # a query is a read sent as POST; live connections are a viewer's own
        ("POST", f"{API}/metrics/query"),
        ("POST", f"{API}/dashboards/{{id}}/connect"),
        ("DELETE", f"{API}/dashboards/connections/{{connection_id}}"),
    }
    opened = []
    for method, path in routes:
        anonymous = requests.request(method, secured.url + fill(path), json={}, timeout=10)
        if anonymous.status_code != 401:
            opened.append(f"anonymous {method} {path}: {anonymous.status_code}")
        if method != "GET" and (method, path) not in viewer_may:
            answer = vic.http.request(method, secured.url + fill(path), json={}, timeout=10)
            if answer.status_code != 403:
                opened.append(f"viewer {method} {path}: {answer.status_code}")
    assert opened == []


def test_login_attempts_are_rate_limited_and_sessions_expire(tmp_path):
    settings = quiet_settings(auth__enabled="true", auth__login_rate_limit="3", auth__session_idle="1ms")
    runtime = Runtime(settings, tmp_path, secrets=SECRETS)
    with serving(runtime) as pb:
        http = requests.Session()
        http.headers["Origin"] = pb.url
        tries = [
            http.post(pb.url + "/login", data={"user": "x", "password": "y"}, timeout=10) for _ in range(4)
        ]
        assert [t.status_code for t in tries[:3]] == [401] * 3
        assert tries[3].status_code == 429 and int(tries[3].headers["Retry-After"]) >= 1
    runtime.archive.close()
    runtime = Runtime(
        quiet_settings(auth__enabled="true", auth__session_idle="1ms"), tmp_path / "b", secrets=SECRETS
    )
    with serving(runtime) as pb:
        admin = Client(pb.url, "admin")
        time.sleep(0.01)  # longer than the idle timeout of one millisecond
        expired = admin.http.get(pb.url + API + "/version", timeout=10)
        assert expired.status_code == 401
        page = admin.http.get(pb.url + "/operations", allow_redirects=False, timeout=10)
        assert page.status_code == 302 and page.headers["Location"].startswith("/login")
        assert page.headers["Referrer-Policy"] == "same-origin" and page.headers["X-Frame-Options"] == "DENY"
    runtime.archive.close()


def test_a_key_or_user_that_cannot_be_saved_is_refused_with_507_and_never_works(secured):
    admin = Client(secured.url, "admin")
    runtime = secured.runtime
    operator = admin.http.post(
        secured.url + API + "/keys", json={"name": "ops", "scopes": ["admin"]}, timeout=10
    )
    by_key = Client(secured.url, key=operator.json()["key"])

    def table(name: str, away: bool) -> None:  # the database refuses writes to it, as a full disk would
        old, new = (name, name + "_away") if away else (name + "_away", name)
        with runtime.database.begin() as db:
            db.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")

    table("api_keys", True)
    made = admin.http.post(secured.url + API + "/keys", json={"name": "ci", "scopes": ["ingest"]}, timeout=10)
    assert made.status_code == 507 and "nothing was changed" in made.json()["error"]
    table("api_keys", False)
    assert all(k.name != "ci" for k in runtime.keys.keys.values())
    table("users", True)
    person = {"name": "zoe", "password": PASSWORD, "role": "viewer", "access": ["operations"]}
    assert by_key.http.post(secured.url + API + "/users", json=person, timeout=10).status_code == 507
    table("users", False)
    assert runtime.users.identity("zoe") is None
    made = admin.http.post(secured.url + API + "/keys", json={"name": "ci", "scopes": ["ingest"]}, timeout=10)
    assert made.status_code == 201
