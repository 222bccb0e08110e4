"""The state database replicas share, on SQLite and on a real PostgreSQL: dashboards and their versions."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from dashboard_app.access.audit import AuditLog
from dashboard_app.access.keys import Keys
from dashboard_app.access.secrets import Secrets
from dashboard_app.access.users import Users
from dashboard_app.alerts.engine import AlertEngine
from dashboard_app.alerts.notify import Notifier
from dashboard_app.alerts.rules import RuleBook
from dashboard_app.alerts.silences import Silences
from dashboard_app.api.frame import PREFIX as API
from dashboard_app.dashboard_store import DashboardError, DashboardStore
from dashboard_app.runtime import Runtime
from dashboard_app.sources.source import EmbeddedSource
from dashboard_app.state.database import database_url, metadata, notifications, open_database
from dashboard_app.state.definitions import SavedDefinitions
from dashboard_app.state.totals import RunningTotals
from tests.servers import logged_in, new_database, postgres_cluster, quiet_settings, serving
from tests.test_alerts import CPU, HOST, cpu_history, rule
from tests.test_dashboard_documents import SHOP
from tsdb.metrics import Sample


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster made for these tests on a free 127.0.0.1 port, run as postgres, stopped after."""
    with postgres_cluster() as base:
        yield base


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """The URL of an empty state database, of each kind."""
    if request.param == "sqlite":
        yield database_url(None, tmp_path)
        return
    yield new_database(request.getfixturevalue("postgres"))


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


# ----- rules, alert state, notifications, running totals, pushed definitions, the audit log


def _alerting(url: str, clock, store, book: RuleBook | None = None) -> AlertEngine:
    """One replica's alerting: its own connections to the database, one webhook to tell."""
    engine = open_database(database_url(url, Path(".")))
    book = book or RuleBook(engine, shipped={})
    notifier = Notifier(None, ("http://127.0.0.1:9/hook",), clock=clock, database=engine)
    alerts = AlertEngine(book, EmbeddedSource(store), clock, notifier, database=engine, interval=15)
    notifier.may_deliver = lambda: alerts.leading
    return alerts


def _outbox(alerts: AlertEngine) -> list[str]:
    with alerts.database.connect() as db:
        rows = db.execute(select(notifications.c.payload).order_by(notifications.c.id)).scalars().all()
    return [json.loads(p)["status"] for p in rows]


def test_one_replica_evaluates_and_notifies_the_other_takes_over_when_it_dies(url, clock, store):
    cpu_history(store, clock, clock.now - 1800, spike=(0, 1800))
    one = _alerting(url, clock, store)
    one.book.put(rule(**{"for": 0}))
    two = _alerting(url, clock, store)
    assert "high-cpu" in two.book.rules  # a rule made on one replica is in force on the other
    assert one.evaluate() == 1 and two.evaluate() == 0  # both run the job; one evaluates
    assert one.leading and not two.leading
    [seen] = two.active()  # the other shows what the evaluating one found
    assert seen["state"] == "firing" and seen["labels"]["host"] == "a"
    for _ in range(3):
        clock.advance(5)
        one.evaluate(), two.evaluate(), two.contend()
    assert _outbox(one) == ["firing"]  # told once, however many evaluations and replicas
    # The evaluating replica dies (no stop, no renewal): within its lease's time the other takes over,
    # goes on from the alerts as they were (firing, told) and tells nothing twice.
    clock.advance(16)
    two.contend()
    assert two.leading and _outbox(two) == ["firing"]
    store.append([Sample(CPU, HOST, 0.1, clock.now + t) for t in range(1, 120, 5)])
    clock.advance(120)
    assert two.evaluate() == 1
    assert _outbox(two) == ["firing", "resolved"] and two.active() == []
    # What the dead replica would still write once back is refused: the lease is another's.
    assert one.evaluate() == 0 and not one.leading and _outbox(one) == ["firing", "resolved"]


def test_alert_state_and_history_survive_a_restart_and_a_stop_hands_over_at_once(url, clock, store):
    cpu_history(store, clock, clock.now - 1800, spike=(0, 1800))
    first = _alerting(url, clock, store)
    first.book.put(rule(**{"for": 20}))
    first.evaluate()
    clock.advance(10)
    first.evaluate()
    [pending] = first.active()
    first.stop()  # a clean stop lets the lease go
    again = _alerting(url, clock, store)
    [kept] = again.active()
    assert kept["state"] == "pending" and kept["active_at"] == pending["active_at"]
    clock.advance(10)
    assert again.evaluate() == 1 and again.leading  # no wait for the lease: it was let go
    [firing] = again.active()
    assert firing["state"] == "firing" and firing["active_at"] == pending["active_at"]
    assert _outbox(again) == ["firing"]


def test_rules_audit_and_pushed_definitions_are_shared_and_their_files_imported_once(url, tmp_path):
    saved = [rule(id="from-file", **{"for": 0}).as_json()]
    (tmp_path / "alert_rules.json").write_text(json.dumps(saved))
    (tmp_path / "custom_metrics.json").write_text(
        json.dumps([{"name": "shop_orders_total", "type": "counter", "labels": ["shop"]}])
    )
    (tmp_path / "audit.log").write_text(json.dumps({"time": 1.0, "who": "ann", "target": "/x"}) + "\n")
    engines = [open_database(database_url(url, Path("."))) for _ in range(2)]
    for _ in range(2):  # the second start imports nothing again
        books = [RuleBook(e, shipped={}, file=tmp_path / "alert_rules.json") for e in engines]
        audits = [AuditLog(e, files=tmp_path / "audit.log") for e in engines]
        definitions = [SavedDefinitions(e, tmp_path / "custom_metrics.json") for e in engines]
    assert list(books[1].rules) == ["from-file"]
    books[0].put(rule(id="made-on-one"))
    books[1].refresh()
    assert sorted(books[1].rules) == ["from-file", "made-on-one"]
    audits[1].write("maria", "POST", "/alerts/rules", "10.0.0.2", 201)
    assert [e["who"] for e in audits[0].read()] == ["maria", "ann"]
    assert [d.name for d in definitions[1].all()] == ["shop_orders_total"]


def test_running_totals_add_every_increment_from_both_replicas(url):
    totals = [RunningTotals(open_database(database_url(url, Path(".")))) for _ in range(2)]
    series = ("shop_orders_total", (("shop", "eu"),))
    seen: list[float] = []

    def push(replica: RunningTotals) -> None:
        for _ in range(25):
            with replica.adding([series]) as add:
                seen.append(add(*series, 2.0))

    threads = [threading.Thread(target=push, args=(t,)) for t in totals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [2.0 * n for n in range(1, 51)]  # every total once: none lost, none repeated

    class Refused(Exception):
        pass

    with pytest.raises(Refused):  # the server refused: the total stays as it was
        with totals[0].adding([series]) as add:
            add(*series, 1000.0)
            raise Refused
    with totals[1].adding([series]) as add:
        assert add(*series, 1.0) == 101.0


def test_replicas_starting_together_make_the_admin_and_a_rule_once_without_failing(url):
    engines = [open_database(database_url(url, Path("."))) for _ in range(2)]
    users, books = [Users(e) for e in engines], [RuleBook(e, shipped={}) for e in engines]
    start, failures = threading.Barrier(2), []

    def start_replica(n: int) -> None:
        start.wait()
        try:
            users[n].set("admin", "correct-horse-battery", "admin")  # each start sets the admin's password
            books[n].put(rule(id="same-rule"))
        except Exception as exc:  # noqa: BLE001 (any failure is the finding)
            failures.append(repr(exc))

    threads = [threading.Thread(target=start_replica, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert users[1].check("admin", "correct-horse-battery").role == "admin"
    books[0].refresh()
    assert list(books[0].rules) == ["same-rule"]


def test_the_migrations_make_exactly_the_tables_the_code_reads_and_writes(url):
    engine = open_database(database_url(url, Path(".")))
    with engine.connect() as db:
        differences = compare_metadata(MigrationContext.configure(db), metadata)
    assert differences == []
