"""Deliver alerts, off the evaluation thread, to a Prometheus Alertmanager (API v2), to webhooks and to
people through Apprise URLs (e-mail, Slack, Teams, Telegram, Discord, ntfy, Pushover, Matrix, ...).

Webhook body (one POST per change, JSON):

    {"version": "1", "source": "pulseboard", "status": "firing" | "resolved",
     "alerts": [{"rule_id", "name", "severity", "state", "labels", "annotations", "value",
                 "active_at", "fired_at", "resolved_at", "no_data", "last_seen"}]}

An Apprise target gets one message per alert that fires or resolves: the rule, its value (or since
when there is no data), its labels and a link to the Alerts page. A rule's ``notify:`` names the
Apprise targets it goes to (all of them when it names none); webhooks and Alertmanager get every
alert. Times are Unix seconds. A failed delivery is tried again with exponential backoff, up to
RETRIES times; each target counts what it delivered and what it gave up on, with its last error,
for the Alerts page and /metrics. Firing alerts are sent to Alertmanager again every
``resend_interval`` so that it keeps them active.

Each delivery is first written to the outbox in the state database, in the transaction that writes the
evaluation that made it, and marked done once delivered (or given up): a replica that takes alerting
over delivers what another wrote and did not deliver, and nothing is delivered twice.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update

from dashboard_app.settings import LISTEN
from dashboard_app.state.database import memory_database, notifications
from layouts.units import format_time, format_value

log = logging.getLogger(__name__)
RETRIES = 5


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def alertmanager_body(alerts: list[dict], generator: str) -> list[dict]:
    """Return alerts in Alertmanager's API v2 form: labels, annotations, startsAt, endsAt."""
    out = []
    for a in alerts:
        item = {
            "labels": {k: str(v) for k, v in a["labels"].items()},
            "annotations": a["annotations"],
            "startsAt": _iso(a["fired_at"] or a["active_at"]),
            "generatorURL": f"{generator}/alerts",
        }
        if a["state"] == "resolved":
            item["endsAt"] = _iso(a["resolved_at"])
        out.append(item)
    return out


class NotSent(Exception):
    """The service did not take the message; Apprise said why."""


class Refused(Exception):
    """The receiver answered that the delivery is wrong (4xx): sending it again would not help."""


def post_json(url: str, body: object, timeout: float = 5.0) -> None:
    """POST JSON; raise for a failed connection or an answer that is not a success."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 (configured URLs)
            pass
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            raise Refused(f"{url} answered {exc.code} {exc.reason}") from None
        raise


def message(alert: dict, link: str) -> tuple[str, str, str]:
    """Return an alert as a person reads it: title, body and how it is flagged (Apprise's type)."""
    if alert["state"] == "resolved":
        kind, flag = "RESOLVED", "success"
    else:
        kind = "NO DATA" if alert.get("no_data") else "FIRING"
        flag = {"critical": "failure", "warning": "warning"}.get(alert["severity"], "info")
    title = f"{kind}: {alert['name']} ({alert['severity']})"
    lines = [alert["annotations"].get("summary") or alert["name"]]  # a no-data one's says since when
    if alert.get("no_data"):
        lines.append(alert["annotations"].get("description", ""))
    elif alert["value"] is not None:
        lines.append(f"Value: {format_value(alert['value'], alert.get('unit'))}")
    shown = {k: v for k, v in alert["labels"].items() if k not in ("alertname", "severity")}
    if shown:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    lines.append(f"Firing since: {format_time(alert['fired_at'] or alert['active_at'])}")
    if alert["state"] == "resolved":
        lines.append(f"Resolved at: {format_time(alert['resolved_at'])}")
    lines.append(f"Rule: {alert['rule_id']} · {link}")
    return title, "\n".join(lines), flag


@dataclass
class Target:
    """One destination and what it has done: delivered, given up, its last error."""

    name: str
    kind: str  # alertmanager, webhook, apprise
    shown: str  # the destination with its secrets left out
    deliver: Callable[[object], None] = field(repr=False)
    delivered: int = 0
    failed: int = 0  # deliveries given up after every retry
    retried: int = 0
    failing: bool = False  # the last attempt failed
    last_error: str | None = None
    last_error_at: float | None = None

    def status(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.shown,
            "delivered": self.delivered,
            "failed": self.failed,
            "retried": self.retried,
            "failing": self.failing,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def apprise_target(name: str, url: str) -> Target:
    """A target that sends through one Apprise URL."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        raise ValueError(f"{url!r} is not an Apprise URL Pulseboard can send to")
    shown = sender[0].url(privacy=True).split("?")[0]  # secrets masked, Apprise's own options left out

    def deliver(payload) -> None:
        title, body, flag = payload
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as output:
            sent = sender.notify(body=body, title=title, notify_type=flag)
        if not sent:
            reason = output.getvalue().strip().splitlines()
            raise NotSent(reason[-1] if reason else "the service did not accept the message")

    return Target(name, "apprise", shown, deliver)


class Notifier:
    """A delivery thread with a queue: ``queue`` never blocks the caller; the outbox keeps what is due."""

    def __init__(
        self,
        alertmanager: str | None,
        webhooks: tuple[str, ...] = (),
        generator: str | None = None,
        resend_interval: float = 60.0,
        notify: tuple[tuple[str, str], ...] = (),
        backoff: float = 1.0,
        clock: Callable[[], float] = time.time,
        count: Callable[[str, dict[str, str]], None] = lambda name, labels: None,
        database: Engine | None = None,
        may_deliver: Callable[[], bool] = lambda: True,
    ):
        self.alertmanager = alertmanager.rstrip("/") if alertmanager else None
        self.generator = (generator or "http://{}:{}".format(*LISTEN)).rstrip("/")  # links to the pages
        self.resend_interval = resend_interval
        self.backoff = backoff
        self.clock = clock
        self.count = count  # into Pulseboard's own metrics: deliveries and failures by target
        self.targets: dict[str, Target] = {}
        if self.alertmanager:
            api = f"{self.alertmanager}/api/v2/alerts"
            self.targets["alertmanager"] = Target(
                "alertmanager", "alertmanager", api, lambda body: post_json(api, body)
            )
        for i, url in enumerate(webhooks, 1):
            name = f"webhook-{i}"
            self.targets[name] = Target(name, "webhook", url, lambda b, u=url: post_json(u, b))
        self.people = [name for name, _ in notify]  # the Apprise targets, in the order given
        for name, url in notify:
            self.targets[name] = apprise_target(name, url)
        self.database = database if database is not None else memory_database()  # the outbox is there
        self.may_deliver = may_deliver  # False once another replica took notifying over
        self._in_flight: set[int] = set()  # outbox ids queued or being retried here
        self._flight_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.targets)

    @property
    def delivered(self) -> int:
        return sum(t.delivered for t in self.targets.values())

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.targets.values())

    @property
    def last_error(self) -> str | None:
        errors = [t for t in self.targets.values() if t.last_error]
        latest = max(errors, key=lambda t: t.last_error_at, default=None)
        return f"{latest.name}: {latest.last_error}" if latest else None

    def status(self) -> list[dict]:
        """Every target with its counts and last error, for the Alerts page and the API."""
        return [t.status() for t in self.targets.values()]

    def payloads(self, alerts: list) -> list[tuple[str, object]]:
        """What each destination gets for changed alerts (Alert objects or dicts): (target, payload)."""
        out: list[tuple[str, object]] = []
        if not self.enabled or not alerts:
            return out
        items = [a if isinstance(a, dict) else a.as_dict() for a in alerts]
        for status in ("firing", "resolved"):
            group = [a for a in items if a["state"] == status]
            if not group:
                continue
            if self.alertmanager:
                out.append(("alertmanager", alertmanager_body(group, self.generator)))
            for target in self.targets.values():
                if target.kind == "webhook":
                    body = {"version": "1", "source": "pulseboard", "status": status, "alerts": group}
                    out.append((target.name, body))
        for alert in items:
            picked = alert.get("notify")
            for name in self.people if picked is None else [n for n in picked if n in self.people]:
                out.append((name, list(message(alert, f"{self.generator}/alerts"))))
        return out

    def record(self, db: Connection, alerts: list, now: float) -> list[tuple[int, str, object]]:
        """Within the transaction that writes an evaluation: write its notifications to the outbox;
        return them (id, target, payload) for ``queue`` once the transaction is committed."""
        items = []
        for name, payload in self.payloads(alerts):
            row = {"target": name, "payload": json.dumps(payload), "created": now}
            items.append(
                (db.execute(insert(notifications).values(**row)).inserted_primary_key[0], name, payload)
            )
        return items

    def queue(self, items: list[tuple[int, str, object]]) -> None:
        """Hand written notifications to the delivery thread (each id at most once in this process)."""
        for key, name, payload in items:
            with self._flight_lock:
                if key in self._in_flight:
                    continue
                self._in_flight.add(key)
            self._put(name, payload, key)

    def resume(self) -> None:
        """Deliver what the outbox still holds: what a replica that stopped or died did not deliver."""
        with self.database.connect() as db:
            rows = db.execute(
                select(notifications.c.id, notifications.c.target, notifications.c.payload)
                .where(notifications.c.done.is_(None))
                .order_by(notifications.c.id)
            ).all()
        self.queue([(r.id, r.target, json.loads(r.payload)) for r in rows if r.target in self.targets])

    def _finish(self, key: int | None) -> None:
        """A notification delivered or given up: the outbox no longer holds it for anyone."""
        if key is None:
            return
        with self._flight_lock:
            self._in_flight.discard(key)
        now = self.clock()
        with self.database.begin() as db:
            db.execute(update(notifications).where(notifications.c.id == key).values(done=now))
            if key % 100 == 0:  # now and then, forget what was done a day ago
                db.execute(delete(notifications).where(notifications.c.done < now - 86400))

    def resend(self, firing: list[dict]) -> None:
        """Tell Alertmanager again about alerts still firing, so that they stay active there."""
        if self.alertmanager and firing:
            self._put("alertmanager", alertmanager_body(firing, self.generator))

    def _put(self, name: str, payload: object, key: int | None = None) -> None:
        try:
            self._queue.put_nowait((name, payload, 0, key))
        except queue.Full:
            self._finish(key)
            self.targets[name].failed += 1
            self.count("pulseboard_alert_notifications_failed_total", {"target": name})
            log.warning("alert delivery queue is full; dropped a delivery to %s", name)

    def start(self) -> None:
        if self._thread is None and self.enabled:
            self._thread = threading.Thread(target=self._run, name="pulseboard-notify", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                name, payload, attempt, key = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            target = self.targets[name]
            if key is not None and not self.may_deliver():
                with self._flight_lock:  # another replica took over: it delivers what the outbox holds
                    self._in_flight.discard(key)
                continue
            try:
                target.deliver(payload)
                self._finish(key)
                target.delivered += 1
                target.failing = False
                self.count("pulseboard_alert_notifications_total", {"target": name})
            except Refused as exc:
                self._finish(key)
                target.failed += 1
                target.failing = True
                self.count("pulseboard_alert_notifications_failed_total", {"target": name})
                target.last_error, target.last_error_at = f"refused: {exc}", self.clock()
                log.warning("%s refused an alert delivery: %s", target.shown, exc)
            except Exception as exc:  # the receiver is down or refused: try again later, up to RETRIES
                target.last_error = str(exc) if isinstance(exc, NotSent) else f"{type(exc).__name__}: {exc}"
                target.last_error_at, target.failing = self.clock(), True
                if attempt + 1 >= RETRIES:
                    self._finish(key)
                    target.failed += 1
                    self.count("pulseboard_alert_notifications_failed_total", {"target": name})
                    log.warning("gave up delivering an alert to %s: %s", target.shown, exc)
                    continue
                target.retried += 1
                delay = self.backoff * 2**attempt
                timer = threading.Timer(
                    delay, lambda n=name, p=payload, a=attempt + 1, k=key: self._queue.put((n, p, a, k))
                )
                timer.daemon = True
                timer.start()

    def pending(self) -> int:
        return self._queue.qsize()


def wait_delivered(notifier: Notifier, count: int, timeout: float = 10.0) -> bool:
    """Wait until at least ``count`` deliveries succeeded (for tests and scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if notifier.delivered >= count:
            return True
        time.sleep(0.05)
    return False
