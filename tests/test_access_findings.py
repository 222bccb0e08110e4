"""One test per class of access finding: names, regexes, reserved metrics, sessions, logins, redirects,
formula cells, nested bodies, the live channel's origin, size and caps, connection ids, the audit log,
private files, TLS behind a proxy, deny by default and the OpenAPI document."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as live

from dashboard_app.access.audit import AuditLog
from dashboard_app.access.secrets import Secrets
from dashboard_app.api.frame import PREFIX as API
from dashboard_app.runtime import Runtime
from dashboard_app.state.database import database_url, open_database
from tests.servers import ROOT, api_key, closed_with, quiet_settings, serving
from tsdb.metrics import Sample

SECRETS = Secrets("s" * 48, "correct-horse-battery")
PASSWORD = "a-long-enough-password"


def login(url: str, user: str, password: str = PASSWORD, **headers) -> requests.Session:
    http = requests.Session()
    http.headers["Origin"] = url
    http.headers.update(headers)
    answer = http.post(url + "/login", data={"user": user, "password": password}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return http


@pytest.fixture
def secured(tmp_path):
    runtime = Runtime(
        quiet_settings(
            auth__enabled="true", server__trusted_proxies="1", server__max_connections_per_user="2"
        ),
        tmp_path,
        secrets=SECRETS,
    )
    runtime.users.set("olga", PASSWORD, "operator", ["operations"])
    runtime.users.set("ann", PASSWORD, "analyst", ["executive"])
    with serving(runtime) as pb:
        yield pb
    runtime.archive.close()


def key(pb, scopes: list[str]) -> dict:
    admin = login(pb.url, "admin", SECRETS.admin_password)
    return {"Authorization": f"Bearer {api_key(admin, pb.url, scopes)}"}


# ----- names, regexes and the metrics a push may define


@pytest.mark.parametrize(
    "definition, field",
    [
        ({"name": "shop_orders_total\n", "type": "counter"}, "name"),
        ({"name": "shop_orders_total", "type": "counter", "labels": ["region\n"]}, "labels"),
        ({"name": "pulseboard_system_cpu_usage_ratio", "type": "gauge"}, "name"),
        ({"name": "pulseboard_anything_new", "type": "gauge"}, "name"),
        (
            {
                "name": "pulseboard_business_orders_total",
                "type": "counter",
                "unit": "count",
                "labels": ["region"],
                "category": "custom",
            },
            "category",
        ),
    ],
)
def test_a_push_cannot_break_metrics_or_take_pulseboards_names(secured, definition, field):
    ingest = key(secured, ["ingest"])
    answer = requests.post(secured.url + API + "/metrics/custom/register", json=definition, headers=ingest)
    assert 400 <= answer.status_code < 500 and answer.json()["field"] == field, answer.text
    spec = secured.runtime.store.specs.get("pulseboard_business_orders_total")
    assert spec.level == "executive"  # its readers are unchanged
    exposition = requests.get(secured.url + "/metrics", headers=key(secured, ["read"]), timeout=10).text
    assert "\n\n" not in exposition.strip()


def test_a_metric_without_a_level_is_for_admins_only_and_up_is_not_a_prefix(secured):
    ingest = key(secured, ["ingest"])
    for name in ("upload_bytes_total", "up_and_coming_total"):
        register = {"name": name, "type": "counter"}
        assert requests.post(secured.url + API + "/metrics/custom/register", json=register, headers=ingest).ok
        record = {"samples": [{"name": name, "value": 1}]}
        assert requests.post(secured.url + API + "/metrics/custom/record", json=record, headers=ingest).ok
    now = time.time()
    secured.runtime.store.append([Sample("up", (("job", "node"),), 1.0, now)])
    olga = login(secured.url, "olga")
    names = {s["name"] for s in olga.get(secured.url + API + "/metrics/latest", timeout=10).json()["series"]}
    assert "up" in names and "upload_bytes_total" not in names and "up_and_coming_total" not in names
    refused = olga.post(
        secured.url + API + "/metrics/query", json={"query": "upload_bytes_total"}, timeout=10
    )
    assert refused.status_code == 403 and "admins only" in refused.json()["error"]
    admin = login(secured.url, "admin", SECRETS.admin_password)
    names = {s["name"] for s in admin.get(secured.url + API + "/metrics/latest", timeout=10).json()["series"]}
    assert {"upload_bytes_total", "up_and_coming_total"} <= names


def test_a_backtracking_regex_cannot_stall_pulseboard(tmp_path):
    """(a+)+b against forty a's takes Python's re about 2^40 steps; RE2 answers at once."""
    script = """
import sys, time
from tsdb.metrics import Sample
from tsdb.selector import parse_selector
from dashboard_app.runtime import Runtime
from tests.servers import quiet_settings
from query.evaluate import Query
runtime = Runtime(quiet_settings(), sys.argv[1])
now = time.time()
runtime.store.append([Sample("shop_queue_depth", (("queue", "a" * 40),), 1.0, now)])
frame = runtime.source.evaluate(Query('shop_queue_depth{queue=~"(a+)+b"}', now - 60, now, 15))
print("series", len(frame.columns))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "series 0" in done.stdout, done.stderr[-2000:]


def test_long_and_unsupported_regexes_are_refused_with_the_reason(secured):
    admin = login(secured.url, "admin", SECRETS.admin_password)
    for pattern, words in (("a" * 2000, "at most 1024"), ("(?=a)b", "regex")):
        body = {"query": f'pulseboard_system_cpu_usage_ratio{{host=~"{pattern}"}}'}
        answer = admin.post(secured.url + API + "/metrics/query", json=body, timeout=10)
        assert answer.status_code == 400 and words in answer.json()["error"]


# ----- sessions and logins


def test_an_old_cookie_dies_at_logout_and_at_a_password_change(secured):
    url = secured.url
    olga = login(url, "olga")
    copied = requests.Session()
    copied.cookies.update(olga.cookies)
    assert copied.get(url + API + "/dashboards/list", timeout=10).status_code == 200
    assert olga.get(url + "/logout", timeout=10).status_code == 200  # a GET only shows the button
    assert copied.get(url + API + "/dashboards/list", timeout=10).status_code == 200
    out = olga.post(url + "/logout", allow_redirects=False, timeout=10)
    assert out.status_code == 302 and out.headers["Location"].endswith("/login")
    assert copied.get(url + API + "/dashboards/list", timeout=10).status_code == 401

    olga = login(url, "olga")
    copied.cookies.clear()
    copied.cookies.update(olga.cookies)
    admin = login(url, "admin", SECRETS.admin_password)
    change = {
        "name": "olga",
        "password": "another-long-password",
        "role": "operator",
        "access": ["operations"],
    }
    assert admin.post(url + API + "/users", json=change, timeout=10).status_code == 201
    assert copied.get(url + API + "/dashboards/list", timeout=10).status_code == 401
    login(url, "olga", "another-long-password")


def test_unknown_and_known_names_cost_one_password_check_each(secured, monkeypatch):
    import dashboard_app.access.users as users_module

    checks, hashes = [], []
    real_check = users_module.check_password_hash
    monkeypatch.setattr(
        users_module, "check_password_hash", lambda h, p: checks.append(h) or real_check(h, p)
    )
    monkeypatch.setattr(users_module, "generate_password_hash", lambda p: hashes.append(p) or "x")
    users = secured.runtime.users
    assert users.check("olga", "wrong") is None and users.check("nobody", "wrong") is None
    assert len(checks) == 2 and hashes == []  # one check each, and no hash made on the spot
    assert checks[0].split("$")[0] == checks[1].split("$")[0]  # with the same method and cost


def test_failed_logins_slow_that_name_from_that_address_only_and_say_one_thing(secured):
    url = secured.url
    attacker = {"X-Forwarded-For": "10.0.0.66"}
    answers = [
        requests.post(
            url + "/login", data={"user": "admin", "password": "guess"}, headers={"Origin": url, **attacker}
        )
        for _ in range(7)
    ]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert answers[-1].status_code == 429 and int(answers[-1].headers["Retry-After"]) >= 1
    unknown = requests.post(
        url + "/login", data={"user": "nobody", "password": "guess"}, headers={"Origin": url}
    )
    assert (
        "Wrong user name or password." in answers[0].text and "Wrong user name or password." in unknown.text
    )
    # The admin, from their own address, is not locked out by someone else's guessing.
    login(url, "admin", SECRETS.admin_password, **{"X-Forwarded-For": "10.0.0.7"})


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/%0d%0aSet-Cookie:x", "javascript:1"],
)
def test_login_only_redirects_within_pulseboard(secured, target):
    answer = requests.post(
        secured.url + "/login",
        data={"user": "olga", "password": PASSWORD, "next": target},
        headers={"Origin": secured.url},
        allow_redirects=False,
    )
    location = answer.headers["Location"]
    assert answer.status_code == 302 and location.startswith("/") and not location.startswith("//")
    assert "evil" not in location.split("?")[0].split("/")[1:2][0] if location != "/" else True


def test_cookies_are_secure_behind_a_tls_terminating_proxy(secured):
    behind = requests.post(
        secured.url + "/login",
        data={"user": "olga", "password": PASSWORD},
        headers={
            "Origin": "https://pulse.example",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "pulse.example",
        },
        allow_redirects=False,
    )
    assert behind.status_code == 302 and "Secure" in behind.headers["Set-Cookie"]


def test_forwarded_headers_are_ignored_without_trusted_proxies(tmp_path):
    runtime = Runtime(quiet_settings(auth__enabled="true"), tmp_path, secrets=SECRETS)
    with serving(runtime) as pb:
        answer = requests.post(
            pb.url + "/login",
            data={"user": "admin", "password": SECRETS.admin_password},
            headers={"Origin": pb.url, "X-Forwarded-Proto": "https"},
            allow_redirects=False,
        )
        assert answer.status_code == 302 and "Secure" not in answer.headers["Set-Cookie"]
    runtime.archive.close()


# ----- bad input


def test_formula_cells_are_neutralised_in_csv_exports(secured):
    ingest = key(secured, ["ingest"])
    register = {"name": "shop_orders_total", "type": "counter", "labels": ["note"], "access": "operations"}
    assert requests.post(secured.url + API + "/metrics/custom/register", json=register, headers=ingest).ok
    evil = '=HYPERLINK("http://evil.example","x")'
    samples = {"samples": [{"name": "shop_orders_total", "labels": {"note": evil}, "value": 2}]}
    assert requests.post(secured.url + API + "/metrics/custom/record", json=samples, headers=ingest).ok
    admin = login(secured.url, "admin", SECRETS.admin_password)
    params = {"query": "shop_orders_total", "start": time.time() - 600, "step": 60, "agg": "last"}
    text = admin.get(secured.url + API + "/metrics/export.csv", params=params, timeout=10).text
    header = text.splitlines()[0]
    assert "'shop_orders_total" not in header and ",\"'=" not in header  # a name is not a formula
    assert "=HYPERLINK" in header and all(not cell.startswith("=") for cell in header.split(","))


@pytest.mark.parametrize("path", [API + "/metrics/query", "/_dash-update-component"])
def test_deeply_nested_bodies_get_a_400(secured, path):
    admin = login(secured.url, "admin", SECRETS.admin_password)
    body = "[" * 100_000 + "]" * 100_000
    answer = admin.post(
        secured.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert answer.status_code == 400 and answer.json()["field"] == "body"


def test_live_channel_checks_origin_frame_size_and_per_user_connections(secured):
    olga = login(secured.url, "olga")
    cookie = "; ".join(f"{c.name}={c.value}" for c in olga.cookies)
    ws_url = secured.url.replace("http", "ws") + API + "/ws/dashboard/operations"
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Cookie": cookie,
    }
    http_url = secured.url + API + "/ws/dashboard/operations"
    foreign = requests.get(http_url, headers={**upgrade, "Origin": "https://evil.example"}, timeout=10)
    assert foreign.status_code == 403
    own = requests.get(http_url, headers={**upgrade, "Origin": secured.url}, timeout=10, stream=True)
    assert own.status_code == 101  # a page of Pulseboard's own may open it
    own.close()
    ours = live(ws_url, additional_headers={"Cookie": cookie})  # scripts send no Origin
    second = live(ws_url, additional_headers={"Cookie": cookie})
    try:
        assert json.loads(ours.recv(timeout=10))["type"] == "hello"
        assert json.loads(second.recv(timeout=10))["type"] == "hello"
        third = live(ws_url, additional_headers={"Cookie": cookie})
        code, reason = closed_with(third)  # two is this user's share
        assert code == 1013 and "2 live connections" in reason
        ours.send("x" * 200_000)  # past server.max_frame_bytes: the server closes the connection
        assert closed_with(ours)[0] == 1009
    finally:
        for client in (ours, second):
            try:
                client.close()
            except ConnectionClosed:
                pass  # the server closed it first


def test_connection_ids_are_the_owners_and_admins_only(secured):
    olga = login(secured.url, "olga")
    opened = olga.post(secured.url + API + "/dashboards/operations/connect", timeout=10).json()
    ann = login(secured.url, "ann")
    status = ann.get(secured.url + API + "/status", timeout=10).json()
    assert opened["connection_id"] not in json.dumps(status)
    refused = ann.delete(secured.url + API + f"/dashboards/connections/{opened['connection_id']}", timeout=10)
    assert refused.status_code == 404
    admin = login(secured.url, "admin", SECRETS.admin_password)
    assert opened["connection_id"] in admin.get(secured.url + API + "/status", timeout=10).text
    assert (
        olga.delete(secured.url + API + f"/dashboards/connections/{opened['connection_id']}").status_code
        == 200
    )


def test_the_audit_log_keeps_its_newest_entries_and_imports_the_files_of_earlier_versions(tmp_path):
    engine = open_database(database_url(None, tmp_path))
    (tmp_path / "audit.log.1").write_text(json.dumps({"time": 1.0, "who": "old", "target": "/a"}) + "\n")
    (tmp_path / "audit.log").write_text(json.dumps({"time": 2.0, "who": "new", "target": "/b"}) + "\n{cut")
    log = AuditLog(engine, keep=50, files=tmp_path / "audit.log")
    assert [e["who"] for e in log.read()] == ["new", "old"]
    for i in range(200):
        log.write("admin", "POST", f"/api/v1/monitoring/keys/{i}", "127.0.0.1", 201)
    entries = log.read()
    assert (
        len(entries) == 50
        and entries[0]["target"].endswith("/199")
        and entries[-1]["target"].endswith("/150")
    )
    AuditLog(engine, files=tmp_path / "audit.log")  # a second start imports nothing again
    assert [e["who"] for e in AuditLog(engine).read(2)] == ["admin", "admin"]


def test_files_with_secrets_are_created_owner_only(secured, monkeypatch):
    chmods = []
    monkeypatch.setattr(os, "chmod", lambda *a, **k: chmods.append(a))
    key(secured, ["read"])
    data = Path(secured.runtime.database.url.database).parent
    for name in ("state.sqlite",):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert chmods == []


# ----- deny by default and the documents


def test_an_undeclared_route_is_refused(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as pb:
        pb.flask.add_url_rule("/api/v1/monitoring/secret-report", "secret", lambda: {"cpu": 0.5})
        answer = requests.get(pb.url + "/api/v1/monitoring/secret-report", timeout=10)
        assert answer.status_code == 403 and "declares no permission" in answer.json()["error"]
    runtime.archive.close()


def test_the_openapi_document_is_valid_and_describes_bodies_and_answers(secured):
    admin = login(secured.url, "admin", SECRETS.admin_password)
    spec = admin.get(secured.url + "/api/v1/openapi.json", timeout=10).json()
    validate(spec)
    query = spec["paths"][API + "/metrics/query"]["post"]
    assert "query" in query["requestBody"]["content"]["application/json"]["schema"]["properties"]
    answer = query["responses"]["200"]["content"]["application/json"]["schema"]
    assert "series" in answer["properties"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"] or "201" in op["responses"], (method, path)
            assert "403" in op["responses"]
            assert "key_scope" in op["x-pulseboard-permission"]
    assert query["x-pulseboard-permission"] == {
        "role": "viewer",
        "key_scope": "read",
        "dashboard_from": None,
        "series_from": "body",
    }


def test_a_page_asked_for_before_login_opens_after_it_with_its_query(secured):
    first = requests.get(secured.url + "/operations?instance=host-a&x=1", allow_redirects=False, timeout=10)
    assert first.status_code == 302
    http = requests.Session()
    form = http.get(secured.url + first.headers["Location"], timeout=10).text
    assert "/operations?instance=host-a&amp;x=1" in form  # the whole address, kept in the form
    answer = http.post(
        secured.url + "/login",
        data={"user": "olga", "password": PASSWORD, "next": "/operations?instance=host-a&x=1"},
        headers={"Origin": secured.url},
        allow_redirects=False,
    )
    assert answer.headers["Location"] == "/operations?instance=host-a&x=1"
