"""Alerting's state in the state database, shared by replicas: which replica evaluates and notifies (a
lease), each rule's alerts and the series it has seen, the history of resolved alerts.

Every replica runs the evaluation job, but only the holder of the lease evaluates; it renews the lease
every quarter of its time to live, and writes each evaluation's alerts, and the notifications they make,
in one transaction that first checks it still holds the lease (so a replica that lost it, paused or cut
off, writes and notifies nothing). The others read what it wrote. When the holder stops, the lease is
let go; when it dies, the lease runs out and the next replica to look takes it over, loads the alerts
as they were and delivers what was written and not yet delivered. Replicas' clocks must agree (NTP)
to well within the time to live.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dashboard_app.state.database import alert_history, alert_state, leases
from tsdb.metrics import Labels, freeze_labels

LEASE = "alerting"
NONE_KEPT = ("[]", "[]", None)  # what a rule with no alert and no series seen keeps: nothing to write


def replica_name() -> str:
    """This process, as the lease and the Alerts page name it: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """A named lease in the database: held by one replica until it lets it go or it runs out."""

    def __init__(self, engine: Engine, ttl: float, clock: Callable[[], float] = time.time, name: str = LEASE):
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self.name = name
        self.holder = replica_name()

    def hold(self) -> bool:
        """Take the lease if it is free or has run out, or renew it if held; say whether it is held."""
        now = self.clock()
        row = leases.c
        with self.engine.begin() as db:
            taken = db.execute(
                update(leases)
                .where(row.name == self.name, (row.holder == self.holder) | (row.expires < now))
                .values(holder=self.holder, expires=now + self.ttl)
            ).rowcount
            if taken:
                return True
            if db.execute(select(row.holder).where(row.name == self.name)).first() is not None:
                return False
        try:  # the first replica ever: the row is made (a replica making it at the same moment wins)
            with self.engine.begin() as db:
                db.execute(
                    insert(leases).values(
                        name=self.name, holder=self.holder, expires=now + self.ttl, changes=0
                    )
                )
            return True
        except IntegrityError:
            return False

    def fence(self, db: Connection, changes: int) -> bool:
        """Within the transaction that writes an evaluation: renew the lease and record the count of
        alert changes, only if no other replica took it over (the row stays locked until the
        transaction ends, so none can meanwhile)."""
        now = self.clock()
        row = leases.c
        return bool(
            db.execute(
                update(leases)
                .where(row.name == self.name, row.holder == self.holder)
                .values(expires=now + self.ttl, changes=changes)
            ).rowcount
        )

    def holder_now(self) -> str | None:
        """The replica holding the lease now, if any."""
        with self.engine.connect() as db:
            found = db.execute(
                select(leases.c.holder, leases.c.expires).where(leases.c.name == self.name)
            ).first()
        return found.holder if found is not None and found.expires >= self.clock() else None

    def release(self) -> None:
        """Let the lease go (a replica that stops), so another takes it over at its next look."""
        with self.engine.begin() as db:
            db.execute(
                update(leases)
                .where(leases.c.name == self.name, leases.c.holder == self.holder)
                .values(expires=0.0)
            )


def kept_alerts(alerts: dict[Labels, object], seen: dict[Labels, float], error: str | None) -> tuple:
    """A rule's state as its row holds it."""
    return (
        json.dumps([[list(map(list, key)), alert.as_dict()] for key, alert in alerts.items()]),
        json.dumps([[list(map(list, key)), at] for key, at in seen.items()]),
        error,
    )


def read_alerts(text: str, make: Callable[..., object]) -> dict[Labels, object]:
    out = {}
    for key, data in json.loads(text):
        if data.get("notify") is not None:
            data["notify"] = tuple(data["notify"])
        out[freeze_labels(dict(key))] = make(**data)
    return out


def read_seen(text: str) -> dict[Labels, float]:
    return {freeze_labels(dict(key)): at for key, at in json.loads(text)}


def read_kept(engine: Engine, history: int, known: int | None = None) -> tuple[list, list[dict] | None, int]:
    """Every rule's row, the newest ``history`` resolved alerts (oldest first; None when the count of
    changes is still ``known``: no alert resolved since), the count of changes."""
    with engine.connect() as db:
        rows = db.execute(select(alert_state)).all()
        changes = db.execute(select(leases.c.changes).where(leases.c.name == LEASE)).scalar() or 0
        past = None
        if changes != known:
            texts = db.execute(
                select(alert_history.c.alert).order_by(alert_history.c.id.desc()).limit(history)
            ).scalars()
            past = [json.loads(text) for text in texts][::-1]
    return rows, past, changes


def write_kept(
    db: Connection, rows: dict[str, tuple], gone: list[str], resolved: list[dict], now: float, history: int
) -> None:
    """Write the rules' rows that changed, drop those of rules gone, add resolved alerts to the history."""
    for rule_id, (alerts, seen, error) in rows.items():
        values = {"alerts": alerts, "seen": seen, "error": error, "evaluated": now}
        if not db.execute(
            update(alert_state).where(alert_state.c.rule_id == rule_id).values(**values)
        ).rowcount:
            db.execute(insert(alert_state).values(rule_id=rule_id, **values))
    if gone:
        db.execute(delete(alert_state).where(alert_state.c.rule_id.in_(gone)))
    if resolved:
        db.execute(insert(alert_history), [{"alert": json.dumps(a)} for a in resolved])
        newest = db.execute(select(func.max(alert_history.c.id))).scalar() or 0
        db.execute(delete(alert_history).where(alert_history.c.id <= newest - history))
