"""The state database replicas share, on SQLite and on a real PostgreSQL: dashboards and their versions."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from dashboard_app.access.keys import Keys
from dashboard_app.access.secrets import Secrets
from dashboard_app.access.users import Users
from dashboard_app.alerts.silences import Silences
from dashboard_app.api.frame import PREFIX as API
from dashboard_app.dashboard_store import DashboardError, DashboardStore
from dashboard_app.runtime import Runtime
from dashboard_app.state.database import database_url, open_database
from tests.servers import free_port, logged_in, quiet_settings, serving

SHOP = {
    "id": "shop",
    "title": "Shop",
    "access": "operations",
    "panels": [
        {"id": "orders", "title": "Orders", "type": "line", "queries": [{"expr": "shop_orders_total"}]}
    ],
}


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    assert found, "PostgreSQL is installed by `make test` (Debian package postgresql)"
    return found[-1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster made for these tests on a free 127.0.0.1 port, run as postgres, stopped after."""
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
    subprocess.run(
        [
            *as_postgres,
            _postgres_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-o",
            options,
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        admin = create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as db:
            db.execute(text("CREATE DATABASE pulseboard"))
        admin.dispose()
        yield f"postgresql://postgres@127.0.0.1:{port}/pulseboard"
    finally:
        subprocess.run(
            [*as_postgres, _postgres_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """The URL of an empty state database, of each kind."""
    if request.param == "sqlite":
        yield database_url(None, tmp_path)
        return
    base = request.getfixturevalue("postgres")
    name = f"t{os.getpid()}_{int(time.time() * 1e6)}"
    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as db:
        db.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    yield base.rsplit("/", 1)[0] + f"/{name}"


def replicas(url: str) -> tuple[DashboardStore, DashboardStore]:
    """Two dashboard stores on one database, each with its own connections, as two replicas have."""
    a, b = open_database(database_url(url, Path("."))), open_database(database_url(url, Path(".")))
    return DashboardStore(a, {}), DashboardStore(b, {})


def test_what_one_replica_saves_the_other_serves_with_its_versions(url):
    one, two = replicas(url)
    one.create(SHOP, "ann")
    two.refresh()
    assert two.get("shop").title == "Shop" and two.version("shop") == 1
    two.update("shop", {**SHOP, "title": "Our shop"}, "bob", base=1)
    one.refresh()
    assert one.get("shop").title == "Our shop"
    assert [(v["version"], v["by"]) for v in one.versions("shop")] == [(2, "bob"), (1, "ann")]
    with pytest.raises(DashboardError) as taken:
        two.create(SHOP, "bob")
    assert taken.value.status == 409


def test_saves_from_two_replicas_at_once_lose_nothing_and_a_stale_one_is_refused(url):
    one, two = replicas(url)
    one.create(SHOP, "ann")
    two.refresh()
    errors = []

    def save(store, who):
        for i in range(15):
            try:
                store.update("shop", {**SHOP, "title": f"{who} {i}"}, who)
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                errors.append(exc)

    threads = [threading.Thread(target=save, args=(s, who)) for s, who in ((one, "ann"), (two, "bob"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    versions = one.versions("shop")
    assert [v["version"] for v in versions] == list(range(31, 0, -1))  # every save is a version of its own
    assert sorted(v["by"] for v in versions[:30]) == ["ann"] * 15 + ["bob"] * 15
    # Both opened version 31; the first save wins, the second is told who came first.
    one.update("shop", {**SHOP, "title": "Ann's"}, "ann", base=31)
    with pytest.raises(DashboardError) as stale:
        two.update("shop", {**SHOP, "title": "Bob's"}, "bob", base=31)
    assert stale.value.status == 409 and "changed by ann" in str(stale.value)
    two.refresh()
    assert two.get("shop").title == "Ann's"


def test_dashboards_saved_as_files_by_earlier_versions_are_imported_once(url, tmp_path):
    files = tmp_path / "dashboards"
    (files / ".versions" / "shop").mkdir(parents=True)
    (files / "shop.yaml").write_text(
        "id: shop\ntitle: Shop v2\naccess: operations\npanels:\n"
        "  - {id: orders, title: Orders, type: line, queries: [{expr: up}]}\n"
    )
    for n in (1, 2):
        (files / ".versions" / "shop" / f"{n}.yaml").write_text(
            (files / "shop.yaml").read_text().replace("v2", f"v{n}")
        )
    (files / ".versions" / "shop" / "log.jsonl").write_text(
        '{"version": 1, "saved": 1.0, "by": "ann", "title": "Shop v1", "panels": 1, "action": "created"}\n'
        '{"version": 2, "saved": 2.0, "by": "bob", "title": "Shop v2", "panels": 1, "action": "saved"}\n'
    )
    engine = open_database(database_url(url, tmp_path))
    store = DashboardStore(engine, {}, files=files)
    assert store.get("shop").title == "Shop v2" and store.version("shop") == 2
    assert [(v["version"], v["by"]) for v in store.versions("shop")] == [(2, "bob"), (1, "ann")]
    assert store.at_version("shop", 1).title == "Shop v1"
    store.update("shop", {**SHOP, "title": "Now"}, "carl", base=2)
    again = DashboardStore(engine, {}, files=files)  # a restart: the files are not read again
    assert again.get("shop").title == "Now" and again.version("shop") == 3


def test_two_replicas_share_dashboards_over_http(url, tmp_path):
    (tmp_path / "shared").mkdir()
    runtimes = [
        Runtime(
            quiet_settings(
                database__url=url if "postgresql" in url else database_url(None, tmp_path / "shared")
            ),
            tmp_path / name,
        )
        for name in ("one", "two")
    ]
    try:
        with serving(runtimes[0]) as first, serving(runtimes[1]) as second:
            assert first.call("POST", "/dashboards/create", SHOP).status_code == 201
            time.sleep(1.1)  # a replica re-reads saved dashboards at most once a second
            seen = second.call("GET", "/dashboards/shop")
            assert seen.status_code == 200 and seen.json()["version"] == 1
            changed = second.call("PUT", "/dashboards/shop?version=1", {**SHOP, "title": "Changed"})
            assert changed.status_code == 200
            stale = first.call("PUT", "/dashboards/shop?version=1", {**SHOP, "title": "Stale"})
            assert stale.status_code == 409
            time.sleep(1.1)
            assert first.call("GET", "/dashboards/shop").json()["title"] == "Changed"
    finally:
        for runtime in runtimes:
            runtime.stop()


SECRETS = Secrets("s" * 48, "correct-horse-battery")
PASSWORD = "a-long-enough-password"


def test_users_sessions_and_keys_are_the_same_on_every_replica(url, tmp_path):
    (tmp_path / "shared").mkdir()
    shared = url if "postgresql" in url else database_url(None, tmp_path / "shared")
    runtimes = [
        Runtime(quiet_settings(auth__enabled="true", database__url=shared), tmp_path / name, secrets=SECRETS)
        for name in ("one", "two")
    ]
    try:
        with serving(runtimes[0]) as first, serving(runtimes[1]) as second:
            admin = logged_in(first.url, "admin", SECRETS.admin_password)
            person = {"name": "zoe", "password": PASSWORD, "role": "viewer", "access": ["operations"]}
            assert admin.post(first.url + API + "/users", json=person, timeout=10).status_code == 201
            # Made on one replica, she logs in on the other; her cookie works on both.
            zoe = logged_in(second.url, "zoe", PASSWORD)
            assert zoe.get(second.url + API + "/dashboards/list", timeout=10).status_code == 200
            assert zoe.get(first.url + API + "/dashboards/list", timeout=10).status_code == 200
            # Logging out on one ends the session on the other at once.
            out = zoe.post(
                first.url + "/logout", headers={"Origin": first.url}, timeout=10, allow_redirects=False
            )
            assert out.status_code in (302, 303), out.text
            assert zoe.get(second.url + API + "/dashboards/list", timeout=10).status_code == 401
            # A key made on one works on the other, and revoked on the other stops working on both.
            made = admin.post(
                first.url + API + "/keys", json={"name": "ci", "scopes": ["read"]}, timeout=10
            ).json()
            bearer = {"Authorization": f"Bearer {made['key']}"}
            assert (
                requests.get(second.url + API + "/dashboards/list", headers=bearer, timeout=10).status_code
                == 200
            )
            admin_two = logged_in(second.url, "admin", SECRETS.admin_password)
            assert admin_two.delete(second.url + API + f"/keys/{made['id']}", timeout=10).status_code == 200
            for replica in (first, second):
                assert (
                    requests.get(
                        replica.url + API + "/dashboards/list", headers=bearer, timeout=10
                    ).status_code
                    == 401
                )
    finally:
        for runtime in runtimes:
            runtime.stop()


def test_users_and_keys_files_of_earlier_versions_are_imported_once(url, tmp_path):
    from werkzeug.security import generate_password_hash

    (tmp_path / "users.json").write_text(
        json.dumps(
            [
                {
                    "name": "ann",
                    "role": "analyst",
                    "access": ["executive"],
                    "password_hash": generate_password_hash(PASSWORD),
                    "generation": 3,
                }
            ]
        )
    )
    digest = hashlib.sha256(b"pb_old-token").hexdigest()
    (tmp_path / "api_keys.json").write_text(
        json.dumps([{"id": "k1", "name": "shop", "scopes": ["ingest"], "digest": digest, "created": 1.0}])
    )
    engine = open_database(database_url(url, tmp_path))
    users = Users(engine, tmp_path / "users.json")
    keys = Keys(engine, file=tmp_path / "api_keys.json")
    ann = users.check("ann", PASSWORD)
    assert ann is not None and ann.role == "analyst" and users.generation("ann") == 3
    assert keys.identify("pb_old-token").scopes == ("ingest",)
    users.end_sessions("ann")
    again = Users(engine, tmp_path / "users.json")  # a restart: the file is not read again
    assert again.generation("ann") == 4


def test_a_silence_made_on_one_replica_mutes_on_the_other_and_ends_on_both(url, tmp_path):
    one, two = (Silences(open_database(database_url(url, tmp_path))) for _ in range(2))
    alert = {"rule_id": "cpu-high", "labels": {"instance": "web-1"}}
    made = one.add("cpu-high", {"instance": "web-1"}, time.time() + 3600, "kernel upgrade", "olga")
    time.sleep(1.1)  # a replica re-reads silences at most once a second
    muting = two.muting(alert)
    assert muting is not None and muting.id == made.id and muting.reason == "kernel upgrade"
    assert two.muting({"rule_id": "cpu-high", "labels": {"instance": "web-2"}}) is None
    assert two.remove(made.id).id == made.id
    time.sleep(1.1)
    assert one.muting(alert) is None and one.active() == []
    ended = one.add("cpu-high", {}, time.time() + 0.5, "a short one", "olga")
    time.sleep(1.2)
    assert ended.id not in [s.id for s in two.active()]  # an ended silence drops out everywhere
