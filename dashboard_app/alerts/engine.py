"""Evaluate alert rules: pending, firing and resolved per series, as Prometheus defines them; backtests."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine

from dashboard_app.alerts.kept import (
    NONE_KEPT,
    Lease,
    kept_alerts,
    read_alerts,
    read_kept,
    read_seen,
    write_kept,
)
from dashboard_app.alerts.notify import Notifier
from dashboard_app.alerts.rules import AlertRule, RuleBook
from dashboard_app.alerts.silences import Silences
from dashboard_app.sources.source import Source
from dashboard_app.state.database import FRESH_FOR, memory_database
from layouts.units import aggregated_unit, format_time, format_value
from query.evaluate import Query
from tsdb.metrics import Labels, Sample, freeze_labels

log = logging.getLogger(__name__)
HISTORY = 1000  # resolved alerts kept for the history view


class LostLease(Exception):
    """Another replica took the lease over during an evaluation: it writes and notifies, not this one."""


@dataclass
class Alert:
    """One rule's alert for one series."""

    rule_id: str
    name: str
    severity: str
    labels: dict[str, str]
    state: str  # pending, firing, resolved
    value: float | None  # None for a no-data alert
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_true: float = 0.0
    annotations: dict[str, str] = field(default_factory=dict)
    metric: str = ""  # the rule's metric: whoever may read it may see the alert
    no_data: bool = False  # fired because the series stopped arriving, not by its value
    last_seen: float | None = None  # the last evaluation that found the series (a no-data alert)
    notify: tuple[str, ...] | None = None  # the rule's notification targets (None: all)
    notified: bool = False  # its firing was sent (not while a silence muted it)
    unit: str = "none"  # the unit of its value (a rate's is per second)

    def as_dict(self) -> dict:
        return asdict(self)


def render(text: str, value: float, labels: dict[str, str]) -> str:
    """Fill ``{{ value }}`` and ``{{ labels.name }}`` (``$`` prefixes allowed) into an annotation.

    ``{{ value | percent }}`` shows a ratio as a percentage, ``{{ value | seconds }}`` a duration.
    """
    text = re.sub(r"\{\{\s*\$?value\s*\|\s*percent\s*\}\}", f"{value * 100:.1f}%", text)
    text = re.sub(r"\{\{\s*\$?value\s*\|\s*seconds\s*\}\}", format_value(value, "seconds"), text)
    text = re.sub(r"\{\{\s*\$?value\s*\}\}", f"{value:.4g}", text)
    return re.sub(r"\{\{\s*\$?labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), text)


class RuleState:
    """The alerts of one rule, keyed by series, moved along by ``step`` at each evaluation.

    A series the rule has seen and that stops arriving (no sample in the rule's window) is handled
    by the rule's ``no_data``: ``alerting`` starts a no-data alert for it (labelled ``nodata="true"``,
    firing after ``for``, resolved when samples return) and keeps a firing alert firing, since nothing
    says it is over; ``ok`` resolves its alert, ``keep`` holds its alert as it is until samples return.
    """

    def __init__(self, rule: AlertRule):
        self.rule = rule
        self.unit = "none"  # of the rule's value, set at each evaluation (a metric may be declared later)
        self.alerts: dict[Labels, Alert] = {}
        self.last_seen: dict[Labels, float] = {}  # series by the last evaluation that found them
        self.error: str | None = None

    def _labels(self, key: Labels) -> dict[str, str]:
        rule = self.rule
        return {**dict(key), **rule.labels, "alertname": rule.name, "severity": rule.severity}

    def step(self, values: Iterable[tuple[Labels, float]], now: float) -> list[Alert]:
        """Apply one evaluation; return the alerts that started firing or resolved at it."""
        rule, changed = self.rule, []
        seen, present = set(), set()
        for key, value in values:
            present.add(key)
            self.last_seen[key] = now
            if not rule.holds(value):
                continue
            seen.add(key)
            labels = self._labels(key)
            alert = self.alerts.get(key)
            if alert is None:
                alert = Alert(rule.id, rule.name, rule.severity, labels, "pending", value, now)
                alert.metric, alert.notify = rule.metric, rule.notify
                self.alerts[key] = alert
            alert.value, alert.last_true, alert.unit = value, now, self.unit
            alert.annotations = {k: render(v, value, labels) for k, v in rule.annotations.items()}
            if alert.state == "pending" and now - alert.active_at >= rule.for_:
                alert.state, alert.fired_at = "firing", now
                changed.append(alert)
        missing = {key for key in self.last_seen if key not in present}
        # A PromQL rule's series leaves the result when its condition clears (as in Prometheus): its
        # absence resolves; no data can be told apart only for a rule's own condition on a query.
        no_data = rule.no_data if rule.expr is None else "ok"
        if no_data == "ok":
            for key in missing:
                del self.last_seen[key]
        if no_data == "alerting":
            for key in missing:
                changed += self._no_data(key, now)
        for key in [k for k in self.alerts if k not in seen]:
            alert = self.alerts[key]
            if alert.no_data:
                if _series_of(key) in missing:
                    continue  # still no samples: the no-data alert stays
            elif key in missing and (no_data == "keep" or alert.state == "firing" and no_data == "alerting"):
                continue  # no samples: the alert holds its state until they return (never "resolved" unseen)
            elif alert.state == "firing" and now - alert.last_true < rule.keep_firing_for:
                continue  # keep_firing_for: hold on through a short dip
            del self.alerts[key]
            if alert.state == "firing":  # a pending alert that clears leaves no trace, as in Prometheus
                alert.state, alert.resolved_at = "resolved", now
                changed.append(alert)
        return changed

    def close(self, now: float) -> list[Alert]:
        """Resolve every alert (the rule was disabled or removed); return those that were firing."""
        firing = [a for a in self.alerts.values() if a.state == "firing"]
        for alert in firing:
            alert.state, alert.resolved_at = "resolved", now
        self.alerts, self.last_seen = {}, {}
        return firing

    def _no_data(self, key: Labels, now: float) -> list[Alert]:
        """Move the no-data alert of a series that stopped arriving; return it once it fires."""
        rule, since = self.rule, self.last_seen[key]
        alert = self.alerts.get(key + NO_DATA)
        if alert is None:
            labels = {**self._labels(key), "nodata": "true"}
            alert = Alert(
                rule.id, rule.name, rule.severity, labels, "pending", None, since, metric=rule.metric
            )
            alert.unit = self.unit
            alert.no_data, alert.last_seen = True, since
            alert.annotations = {
                "summary": f"No data since {format_time(since)}",
                "description": f"{rule.query or rule.expr} has had no sample since then.",
            }
            self.alerts[key + NO_DATA] = alert
        if alert.state == "pending" and now - since >= rule.for_:
            alert.state, alert.fired_at = "firing", now
            return [alert]
        return []


NO_DATA: Labels = (("nodata", "true"),)  # appended to a series' key for its no-data alert


def _series_of(key: Labels) -> Labels:
    return key[: -len(NO_DATA)] if key[-len(NO_DATA) :] == NO_DATA else key


class AlertEngine:
    """Evaluate every enabled rule on a schedule; keep active alerts and history; hand changes on.

    The alerts, their history and the notifications to deliver are kept in the state database; of
    several replicas on one database, the one holding the lease evaluates and notifies, and the others
    show what it wrote (see ``kept``).
    """

    def __init__(
        self,
        book: RuleBook,
        source: Source,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
        silences: Silences | None = None,
        record: Callable[[list[Sample]], object] | None = None,
        database: Engine | None = None,
        interval: float = 15.0,
    ):
        self.book = book
        self.record = record  # stores what recording rules compute (None: nowhere to store them)
        self.silences = silences
        self.source = source
        self.clock = clock
        self.notifier = notifier
        self.database = database if database is not None else memory_database()
        self.lease = Lease(self.database, interval, clock)  # runs out one interval after its last renewal
        self.leading = False  # this replica holds the lease: it evaluates and notifies
        self.states: dict[str, RuleState] = {}
        self._history: deque[dict] = deque(maxlen=HISTORY)
        self._lock = threading.RLock()
        self._written: dict[str, tuple] = {}  # each rule's row as last written or read
        self._read_at = -math.inf  # when a follower last read the kept state (monotonic)
        self.evaluations = 0
        self._last_evaluation: float | None = None
        self.recording_errors: dict[str, str] = {}  # recording rule -> why its last evaluation failed
        self.changes = 0  # alerts that started firing or resolved so far: charts shade firing periods
        self._load()

    @property
    def history(self) -> deque[dict]:
        self._follow()
        return self._history

    @property
    def last_evaluation(self) -> float | None:
        self._follow()
        return self._last_evaluation

    def contend(self) -> None:
        """Take the lease if it is free (then evaluate at once) or renew it; a follower reads the state."""
        if self.lease.hold():
            if not self.leading:
                self.evaluate()
        else:
            self.leading = False
            self._follow(fresh=True)

    def stop(self) -> None:
        """Let the lease go, so another replica takes over at its next look."""
        if self.leading:
            self.leading = False
            self.lease.release()

    def evaluate(self) -> int:
        """Evaluate every enabled rule once, when this replica holds the lease; a failing rule records its
        error and the others go on. Return how many alerts started firing or resolved."""
        now = self.clock()
        self._record(now)
        if not self.leading and not self.lease.hold():  # the holder renews it in the write below
            self._follow(fresh=True)
            return 0
        changed: list[Alert] = []
        with self._lock:
            if not self.leading:  # taken over: go on from what the last holder wrote, deliver what it left
                self._load()
                self.leading = True
                if self.notifier is not None:
                    self.notifier.resume()
            try:
                changed, told, gone = self._step(now)
                resolved = [a.as_dict() for a in changed if a.state == "resolved"]
                rows = {i: kept_alerts(st.alerts, st.last_seen, st.error) for i, st in self.states.items()}
                rows = {i: row for i, row in rows.items() if row != self._written.get(i, NONE_KEPT)}
                with self.database.begin() as db:
                    if not self.lease.fence(db, self.changes + len(changed)):
                        raise LostLease
                    write_kept(db, rows, gone, resolved, now, HISTORY)
                    items = self.notifier.record(db, told, now) if told and self.notifier else []
            except LostLease:
                self.leading, self._written = False, {}  # another replica took over: read it whole
                return 0
            except Exception:
                self.leading, self._written = False, {}  # not written: read back whole, evaluated again
                raise
            self._written.update(rows)
            for rule_id in gone:
                self._written.pop(rule_id, None)
            self._history.extend(resolved)
            self.changes += len(changed)
            self.evaluations += 1
            self._last_evaluation = now
        if items:
            self.notifier.queue(items)
        return len(changed)

    def _step(self, now: float) -> tuple[list[Alert], list[Alert], list[str]]:
        """Move every rule's alerts along; return the changes, those to notify, the rules gone."""
        changed: list[Alert] = []
        rules = self.book.rules
        gone = [r for r in self.states if r not in rules or not rules[r].enabled]
        for rule_id in gone:
            changed += self.states.pop(rule_id).close(now)  # a removed rule resolves its alerts
        for rule in rules.values():
            if not rule.enabled:
                continue
            state = self.states.get(rule.id)
            if state is None or state.rule != rule:
                old = state
                state = self.states[rule.id] = RuleState(rule)
                if old is not None:
                    state.alerts, state.last_seen = old.alerts, old.last_seen
            try:
                state.unit = self.unit(rule)
                values = self.values(rule, now)
                state.error = None
            except Exception as exc:  # one broken rule must not stop the others
                state.error = f"{type(exc).__name__}: {exc}"
                log.warning("alert rule %s failed: %s", rule.id, state.error)
                continue
            changed += state.step(values, now)
        return changed, self._to_tell(changed), gone

    def _follow(self, fresh: bool = False) -> None:
        """On a replica that does not evaluate: read what the evaluating one wrote (at most once a second)."""
        if self.leading or (not fresh and time.monotonic() - self._read_at < FRESH_FOR):
            return
        self._load(reuse=True)

    def _load(self, reuse: bool = False) -> None:
        """Read the kept alerts, history and count of changes (at start, on taking over, following).

        ``reuse`` (a replica following): a rule whose row is as last read keeps its state, and the
        history is read again only when an alert changed, so a follower's second costs little."""
        rows, past, changes = read_kept(self.database, HISTORY, self.changes if reuse else None)
        rules = self.book.rules
        states, written, evaluated = {}, {}, None
        for row in rows:
            kept = (row.alerts, row.seen, row.error)
            written[row.rule_id] = kept
            rule = rules.get(row.rule_id)
            if rule is None:
                continue
            evaluated = max(evaluated or row.evaluated, row.evaluated)
            known = self.states.get(row.rule_id)
            if reuse and known is not None and known.rule == rule and self._written.get(row.rule_id) == kept:
                states[row.rule_id] = known
                continue
            state = states[row.rule_id] = RuleState(rule)
            state.alerts, state.last_seen = read_alerts(row.alerts, Alert), read_seen(row.seen)
            state.error = row.error
        with self._lock:
            self.states, self._written, self.changes = states, written, changes
            if past is not None:
                self._history = deque(past, maxlen=HISTORY)
            self._last_evaluation = evaluated or self._last_evaluation
            self._read_at = time.monotonic()

    def _record(self, now: float) -> None:
        """Evaluate every recording rule and store its series under the rule's name."""
        self.recording_errors = {}
        if self.record is None:
            return
        for rule in self.book.recording:
            try:
                found = self.source.instant(rule.expr, now)
                samples = [
                    Sample(rule.record, freeze_labels({**s.labels, **rule.labels}), v, now) for s, v in found
                ]
                if samples:
                    self.record(samples)
            except Exception as exc:  # one broken rule must not stop the others
                self.recording_errors[rule.record] = f"{type(exc).__name__}: {exc}"
                log.warning("recording rule %s failed: %s", rule.record, exc)

    def _to_tell(self, changed: list[Alert]) -> list[Alert]:
        """The changes to notify: firing alerts no silence mutes (also those whose silence ended since
        they fired) and the resolution of alerts whose firing was notified."""
        silences = self.silences.active() if self.silences is not None else []

        def muted(alert: Alert) -> bool:
            return any(s.matches({"rule_id": alert.rule_id, "labels": alert.labels}) for s in silences)

        told = [a for a in changed if a.state == "resolved" and a.notified]
        firing = [a for st in self.states.values() for a in st.alerts.values() if a.state == "firing"]
        for alert in firing:
            if not alert.notified and not muted(alert):
                alert.notified = True
                told.append(alert)
        return told

    def unit(self, rule: AlertRule) -> str:
        """The unit of a rule's value: its metric's, per second for a rate."""
        if rule.expr is not None:
            return (self.source.unit(rule.metric) if rule.metric else None) or "none"
        return aggregated_unit(self.source.unit(rule.query), rule.aggregation)

    def values(self, rule: AlertRule, now: float) -> list[tuple[Labels, float]]:
        """Return each series' value for a rule at a time: its PromQL, evaluated by the one engine."""
        return [
            (freeze_labels(s.labels), v)
            for s, v in self.source.instant(rule.value_promql, now)
            if math.isfinite(v)
        ]

    def active(self) -> list[dict]:
        """Return pending and firing alerts, firing and most severe first, each with the silence that
        mutes it (``silenced_by``, ``silenced_until``) or None."""
        order = {"critical": 0, "warning": 1, "info": 2}
        silences = self.silences.active() if self.silences is not None else []
        self._follow()
        with self._lock:
            alerts = [a.as_dict() for st in self.states.values() for a in st.alerts.values()]
        for alert in alerts:
            silence = next((s for s in silences if s.matches(alert)), None)
            alert["silenced_by"] = silence.id if silence else None
            alert["silenced_until"] = silence.until if silence else None
        return sorted(alerts, key=lambda a: (a["state"] != "firing", order[a["severity"]], a["active_at"]))

    def describe(self, rule: AlertRule) -> dict:
        """Return a rule as the API and the Alerts page show it: its fields, state, last error, origin."""
        return {
            **rule.as_json(),
            "promql": rule.value_promql,  # what is evaluated, before the condition
            "unit": self.unit(rule),
            "status": self.rule_status(rule.id),
            "shipped": rule.id in self.book.shipped,
        }

    def rule_status(self, rule_id: str) -> dict:
        self._follow()
        state = self.states.get(rule_id)
        if state is None:
            return {"state": "inactive", "error": None, "alerts": 0}
        states = {a.state for a in state.alerts.values()}
        overall = "firing" if "firing" in states else "pending" if "pending" in states else "inactive"
        return {"state": overall, "error": state.error, "alerts": len(state.alerts)}

    def episodes(self, metric: str, start: float, end: float) -> list[dict]:
        """Return firing periods of rules on a metric that overlap [start, end] (an open one ends now)."""
        now = self.clock()
        rules = self.book.rules
        out = []
        self._follow()
        with self._lock:
            active = [
                a.as_dict() for st in self.states.values() for a in st.alerts.values() if a.state == "firing"
            ]
            past = list(self._history)
        for alert in past + active:
            rule = rules.get(alert["rule_id"])
            if rule is None or rule.metric != metric or alert["fired_at"] is None:
                continue
            until = alert["resolved_at"] or now
            if until >= start and alert["fired_at"] <= end:
                out.append({**alert, "until": until})
        return out


def backtest(rule: AlertRule, source: Source, start: float, end: float, step: float) -> list[dict]:
    """Run a rule over stored history at ``step`` seconds; return its firing and resolved events.

    The rule's PromQL is evaluated as one range query, the same numbers an evaluation at each of
    those times gives.
    """
    state = RuleState(rule)
    events = []
    first = start + (rule.window if rule.expr is None else 0.0)
    if first > end:
        return events
    frame = source.evaluate(Query(rule.value_promql, first, end, step))
    infos = frame.attrs.get("series", {})
    keys = {column: freeze_labels(infos[column].labels) for column in frame.columns}
    rows = {round(t.timestamp(), 3): row for t, row in zip(frame.index, frame.to_numpy(dtype=float))}
    t = first
    while t <= end + 1e-9:
        row = rows.get(round(t, 3))
        values = [] if row is None else [(keys[c], v) for c, v in zip(frame.columns, row) if math.isfinite(v)]
        for alert in state.step(values, t):
            at = alert.fired_at if alert.state == "firing" else alert.resolved_at
            events.append(
                {"state": alert.state, "at": at, "value": alert.value, "labels": dict(alert.labels)}
            )
        t += step
    return events
