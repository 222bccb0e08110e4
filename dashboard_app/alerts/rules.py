"""Alert rules: their schema, the shipped YAML files, the rules made through the API, the export."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dashboard_app.config_dir import ConfigDir
from dashboard_app.state.database import FRESH_FOR, alert_rules, import_once, memory_database
from layouts.schema import Aggregation
from layouts.validation import ConfigError, describe, parse_duration, read_yaml
from query.promql.printer import metric_names
from query.promql.shorthand import ShorthandError, check, over_window
from tsdb.metrics import METRIC_NAME
from tsdb.persistence import load_json
from tsdb.selector import SelectorError, parse_selector

CONDITIONS = (">", ">=", "<", "<=", "==", "!=")
REQUIRED = "required (or give the rule as PromQL in expr)"
SEVERITIES = ("info", "warning", "critical")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # matched whole: no trailing newline slips through


def _seconds(value):
    if value in (0, 0.0, "0", "0s"):
        return 0.0
    return parse_duration(value)


Seconds = Annotated[float, BeforeValidator(_seconds)]


class AlertRule(BaseModel):
    """When a query's value over a window crosses a threshold for long enough, an alert fires."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str
    name: str = Field(min_length=1)
    expr: str | None = Field(
        None,
        description="PromQL, as in a Prometheus rule file: every series it gives is an alert (e.g. "
        "rate(errors_total[5m]) > 0.1). Instead of query, aggregation, window, condition and threshold.",
    )
    query: str | None = Field(
        None, validate_default=True, description="Series selector, as the query API takes it."
    )
    aggregation: Aggregation = "avg"
    window: Seconds = Field(60, gt=0, description="Seconds the aggregation covers.")
    condition: Literal[">", ">=", "<", "<=", "==", "!="] | None = Field(None, validate_default=True)
    threshold: float | None = Field(None, validate_default=True)
    for_: Seconds = Field(0, alias="for", ge=0, description="Seconds the condition must hold before firing.")
    keep_firing_for: Seconds = Field(0, ge=0, description="Seconds an alert keeps firing after it clears.")
    predict: Seconds | None = Field(
        None, gt=0, description="Compare the value a straight line through the window reaches this far ahead."
    )
    no_data: Literal["alerting", "ok", "keep"] = Field(
        "alerting",
        description="When a series the rule saw stops arriving for `for`: alerting fires a no-data "
        "alert until samples return; ok resolves; keep holds the alert's state until they return. "
        "(A PromQL rule's series that leaves the result is resolved, as in Prometheus.)",
    )
    notify: tuple[str, ...] | None = Field(
        None, description="Names of alerts.notify targets to tell (all of them when not given)."
    )
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(
                "an id is 1-63 lowercase letters, digits and dashes, starting with a letter or digit"
            )
        return value

    @field_validator("condition", "threshold")
    @classmethod
    def _given(cls, value, info):
        if value is None and info.data.get("expr") is None:
            raise ValueError(REQUIRED)
        return value

    @field_validator("query")
    @classmethod
    def _selector(cls, value: str | None, info) -> str | None:
        if value is None:
            if info.data.get("expr") is None:
                raise ValueError(REQUIRED)
            return value
        try:
            parse_selector(value)
        except SelectorError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("expr")
    @classmethod
    def _promql(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check(value)
            except ShorthandError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _either_form(cls, data, handler):
        """A rule with ``expr`` is PromQL: a mistake in it is reported, not the form's fields it lacks."""
        try:
            return handler(data)
        except ValidationError as exc:
            if not (isinstance(data, dict) and data.get("expr") is not None):
                raise
            errors = [
                {"type": e["type"], "loc": e["loc"], "input": e["input"], "ctx": e.get("ctx", {})}
                for e in exc.errors()
                if not (e["loc"][:1] in (("query",), ("condition",), ("threshold",)) and REQUIRED in e["msg"])
            ]
            raise ValidationError.from_exception_data(exc.title, errors) from None

    @model_validator(mode="after")
    def _one_form(self):
        if self.expr is not None and (
            self.query is not None or self.condition is not None or self.threshold is not None
        ):
            raise ValueError("give expr (PromQL) or query, condition and threshold, not both")
        return self

    @property
    def metric(self) -> str:
        if self.expr is not None:
            names = metric_names(self.expr)
            return names[0] if names else ""
        return parse_selector(self.query).name

    @property
    def value_promql(self) -> str:
        """The PromQL whose series are the rule's values at each evaluation (before its condition)."""
        if self.expr is not None:
            return self.expr
        window = _duration(self.window)
        if self.predict is not None:
            return f"predict_linear({self.query}[{window}], {self.predict:g})"
        return over_window(self.query, self.aggregation, window)

    def holds(self, value: float) -> bool:
        """Return whether a value meets the condition (every value of a PromQL rule's series does)."""
        if self.expr is not None:
            return True
        t = self.threshold
        return {
            ">": value > t,
            ">=": value >= t,
            "<": value < t,
            "<=": value <= t,
            "==": value == t,
            "!=": value != t,
        }[self.condition]

    def as_json(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


class RecordingRule(BaseModel):
    """A Prometheus recording rule: at each evaluation, ``expr``'s series are stored as ``record``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record: str
    expr: str
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("record")
    @classmethod
    def _name(cls, value: str) -> str:
        if not METRIC_NAME.fullmatch(value):
            raise ValueError(f"a metric name: {METRIC_NAME.pattern}")
        return value

    _expr = field_validator("expr")(classmethod(lambda cls, v: AlertRule._promql(v)))


class _PrometheusAlert(BaseModel):
    """An alerting rule as a Prometheus rule file writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    alert: str = Field(min_length=1)
    expr: str
    for_: str | None = Field(None, alias="for")
    keep_firing_for: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


def _rule_id(name: str, taken: set[str]) -> str:
    base = (
        re.sub(r"[^a-z0-9]+", "-", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()).strip("-")[:56]
        or "rule"
    )
    found, n = base, 1
    while found in taken:
        n += 1
        found = f"{base}-{n}"
    taken.add(found)
    return found


def read_rule_groups(path: Path) -> tuple[list[AlertRule], list[RecordingRule], list[str]]:
    """Read a Prometheus rule file (``groups:``, each with ``rules:`` of ``alert`` and ``record`` entries),
    unchanged; return its alerting rules, its recording rules and an error for each entry that is wrong."""
    data, lines = read_yaml(path)
    alerts: list[AlertRule] = []
    records: list[RecordingRule] = []
    errors: list[str] = []
    taken: set[str] = set()
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        return [], [], [f"{path}:1: groups: a Prometheus rule file holds a list under groups:"]
    for g, group in enumerate(groups):
        items = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(items, list):
            errors.append(f"{path}:{lines.get(('groups', g), 1)}: groups.{g}.rules: a list of rules")
            continue
        for i, item in enumerate(items):
            where = {k[4:]: v for k, v in lines.items() if k[:4] == ("groups", g, "rules", i)}
            try:
                if isinstance(item, dict) and "record" in item:
                    records.append(RecordingRule.model_validate(item))
                    continue
                entry = _PrometheusAlert.model_validate(item)
                labels = dict(entry.labels)
                severity = labels.pop("severity", "warning")
                extra = {"severity": severity} if severity not in SEVERITIES else {}
                alerts.append(
                    AlertRule.model_validate(
                        {
                            "id": _rule_id(entry.alert, taken),
                            "name": entry.alert,
                            "expr": entry.expr,
                            "for": entry.for_ or 0,
                            "keep_firing_for": entry.keep_firing_for or 0,
                            "severity": severity if severity in SEVERITIES else "warning",
                            "labels": {**labels, **extra},
                            "annotations": entry.annotations,
                        }
                    )
                )
            except ValidationError as exc:
                name = item.get("alert") or item.get("record") if isinstance(item, dict) else None
                for line in describe(exc, str(path), where).splitlines():
                    errors.append(line.replace(": ", f": groups.{g}.rules.{i} ({name or 'unnamed'}): ", 1))
    return alerts, records, errors


def read_rules_file(path: Path) -> tuple[list[AlertRule], list[str]]:
    """Read one rules file (a mapping with a ``rules`` list, or a Prometheus rule file with ``groups``):
    its valid alert rules, and an error for each rule that is not (``file:line: rule 'id': field:
    reason``)."""
    data, lines = read_yaml(path)
    if isinstance(data, dict) and "groups" in data:
        alerts, _, errors = read_rule_groups(path)
        return alerts, errors
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        return [], [f"{path}:1: rules: the file must hold a list under rules: (or groups:, as Prometheus)"]
    rules: list[AlertRule] = []
    errors: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(data["rules"]):
        try:
            rule = AlertRule.model_validate(item)
        except ValidationError as exc:
            where = {k[2:]: v for k, v in lines.items() if k[:2] == ("rules", i)}
            rule_id = item.get("id") if isinstance(item, dict) else None
            for line in describe(exc, str(path), where).splitlines():
                errors.append(line.replace(": ", f": rule {rule_id or i + 1!r}: ", 1))
            continue
        if rule.id in seen:
            errors.append(f"{path}:{lines.get(('rules', i), 1)}: rule {rule.id!r} is defined twice")
        seen.add(rule.id)
        rules.append(rule)
    return rules, errors


def unknown_targets(rule: AlertRule, targets: list[str]) -> list[str]:
    """Why a rule's ``notify:`` cannot be met: one reason for each name ``alerts.notify`` has no target of."""
    known = ", ".join(targets) or "none: set alerts.notify"
    return [
        f"notify: no target named {name!r} in alerts.notify (targets: {known})"
        for name in sorted(set(rule.notify or ()) - set(targets))
    ]


def rule_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_recording_rules(directory: Path) -> list[RecordingRule]:
    """The recording rules of every Prometheus rule file in a directory (their errors are
    load_rule_files' to report)."""
    found: list[RecordingRule] = []
    for path in rule_files(directory):
        data, _ = read_yaml(path)
        if isinstance(data, dict) and "groups" in data:
            found += read_rule_groups(path)[1]
    return found


def load_rule_files(directory: Path) -> dict[str, AlertRule]:
    """Load every rules file in a directory; raise ConfigError with every problem found."""
    rules: dict[str, AlertRule] = {}
    errors: list[str] = []
    for path in rule_files(directory):
        found, problems = read_rules_file(path)
        errors += problems
        for rule in found:
            if rule.id in rules and not problems:
                errors.append(f"{path}: rule {rule.id!r} is defined in another file too")
            rules[rule.id] = rule
    if errors:
        raise ConfigError("\n".join(errors))
    return rules


class RuleBook:
    """The rules in force: the shipped files, with rules made or changed through the API on top, kept in
    the state database (a rule saved on one replica is in force on all of them within a second).
    ``file`` is the alert_rules.json of earlier versions, imported once."""

    def __init__(
        self,
        engine: Engine | None,
        shipped: dict[str, AlertRule] | None = None,
        recording: list[RecordingRule] | None = None,
        file: Path | None = None,
    ):
        self.shipped = dict(load_rule_files(ConfigDir().alerts) if shipped is None else shipped)
        self.recording = list(recording or ())  # from Prometheus rule files: their series are stored
        self.engine = engine if engine is not None else memory_database()
        self._lock = threading.Lock()
        self.problems: list[str] = []
        if file is not None:
            self._import(file)
        self._own: dict[str, AlertRule] = {}
        self._all: dict[str, AlertRule] = dict(self.shipped)
        self._read_at = -math.inf
        self.refresh()

    @property
    def rules(self) -> dict[str, AlertRule]:
        """Every rule by id (what another replica saved, within a second)."""
        if time.monotonic() - self._read_at > FRESH_FOR:
            self.refresh()
        return self._all

    def get(self, rule_id: str) -> AlertRule | None:
        """A rule by id; one not known here is looked for in the database (made on another replica)."""
        found = self.rules.get(rule_id)
        if found is None:
            self.refresh()
            found = self._all.get(rule_id)
        return found

    def refresh(self) -> None:
        with self.engine.connect() as db:
            rows = db.execute(select(alert_rules.c.id, alert_rules.c.rule)).all()
        own = {}
        for rule_id, text in rows:
            try:
                own[rule_id] = AlertRule.model_validate(json.loads(text))
            except (ValueError, ValidationError) as exc:  # one damaged row: that rule is missing
                self.problems.append(f"alert rule {rule_id}: {exc}")
        self._own, self._all, self._read_at = own, {**self.shipped, **own}, time.monotonic()

    def put(self, rule: AlertRule) -> bool:
        """Add or replace a rule; True when it is new (stored first: a failed write changes nothing)."""
        text = json.dumps(rule.as_json())
        with self._lock:
            for _ in range(2):  # a second time when another replica made the same rule at that moment
                try:
                    with self.engine.begin() as db:
                        row = alert_rules.c
                        if db.execute(
                            update(alert_rules).where(row.id == rule.id).values(rule=text)
                        ).rowcount:
                            new = False
                        else:
                            db.execute(insert(alert_rules).values(id=rule.id, rule=text))
                            new = rule.id not in self.shipped
                    break
                except IntegrityError:
                    continue
        self.refresh()
        return new

    def delete(self, rule_id: str) -> None:
        """Remove a rule made through the API; a changed shipped rule goes back to its file's version."""
        with self._lock, self.engine.begin() as db:
            db.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
        self.refresh()

    def is_own(self, rule_id: str) -> bool:
        return rule_id in self._own

    def _import(self, file: Path) -> None:
        """Bring the alert_rules.json of earlier versions into the database, once."""
        if not file.is_file():
            return
        saved = load_json(file, lambda items: [AlertRule.model_validate(i) for i in items], self.problems)
        with self.engine.begin() as db:
            if not import_once(db, IMPORTED, file):
                return
            for rule in saved or ():
                if not db.execute(select(alert_rules.c.id).where(alert_rules.c.id == rule.id)).first():
                    db.execute(insert(alert_rules).values(id=rule.id, rule=json.dumps(rule.as_json())))


IMPORTED = "alert rules file imported"


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{int(seconds * 1000)}ms"


def promql(rule: AlertRule) -> str:
    """Return the PromQL a Prometheus server evaluates for a rule: its expr as written, or the form's."""
    if rule.expr is not None:
        return rule.expr
    return f"{rule.value_promql} {rule.condition} {rule.threshold!r}"


def _template(text: str) -> str:
    """Turn {{ value }} and {{ labels.x }} into Prometheus' {{ $value }} and {{ $labels.x }}."""
    text = re.sub(r"\{\{\s*\$?value\s*\|\s*percent\s*\}\}", "{{ $value | humanizePercentage }}", text)
    text = re.sub(r"\{\{\s*\$?value\s*\|\s*seconds\s*\}\}", "{{ $value | humanizeDuration }}", text)
    text = re.sub(r"\{\{\s*\$?value\s*\}\}", "{{ $value }}", text)
    return re.sub(r"\{\{\s*\$?labels\.(\w+)\s*\}\}", r"{{ $labels.\1 }}", text)


def prometheus_rule_file(rules: list[AlertRule]) -> str:
    """Return enabled rules as a Prometheus rule file (YAML) that ``promtool check rules`` accepts."""
    out = []
    for rule in rules:
        if not rule.enabled:
            continue
        entry = {
            "alert": re.sub(r"\W", "_", rule.name.title().replace(" ", "")) or rule.id,
            "expr": promql(rule),
        }
        if rule.for_:
            entry["for"] = _duration(rule.for_)
        if rule.keep_firing_for:
            entry["keep_firing_for"] = _duration(rule.keep_firing_for)
        entry["labels"] = {"severity": rule.severity, "rule_id": rule.id, **rule.labels}
        if rule.annotations:
            entry["annotations"] = {k: _template(v) for k, v in rule.annotations.items()}
        out.append(entry)
    return yaml.safe_dump({"groups": [{"name": "pulseboard", "rules": out}]}, sort_keys=False)
