"""Alert rules: their schema, the shipped YAML files, the rules made through the API, the export."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from collectors.persistence import load_json, write_atomically
from collectors.selector import SelectorError, parse_selector
from dashboard_app.config_dir import ConfigDir
from layouts.schema import Aggregation
from layouts.validation import ConfigError, describe, parse_duration, read_yaml

CONDITIONS = (">", ">=", "<", "<=", "==", "!=")
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
    query: str = Field(description="Series selector, as the query API takes it.")
    aggregation: Aggregation = "avg"
    window: Seconds = Field(60, gt=0, description="Seconds the aggregation covers.")
    condition: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    for_: Seconds = Field(0, alias="for", ge=0, description="Seconds the condition must hold before firing.")
    keep_firing_for: Seconds = Field(0, ge=0, description="Seconds an alert keeps firing after it clears.")
    predict: Seconds | None = Field(
        None, gt=0, description="Compare the value a straight line through the window reaches this far ahead."
    )
    no_data: Literal["alerting", "ok", "keep"] = Field(
        "alerting",
        description="When a series the rule saw stops arriving for `for`: alerting fires a no-data "
        "alert until samples return; ok resolves; keep holds the alert's state until they return.",
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

    @field_validator("query")
    @classmethod
    def _selector(cls, value: str) -> str:
        try:
            parse_selector(value)
        except SelectorError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def metric(self) -> str:
        return parse_selector(self.query).name

    def holds(self, value: float) -> bool:
        """Return whether a value meets the condition."""
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


def read_rules_file(path: Path) -> tuple[list[AlertRule], list[str]]:
    """Read one rules file (a mapping with a ``rules`` list): its valid rules, and an error for each
    rule that is not (``file:line: rule 'id': field: reason``)."""
    data, lines = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        return [], [f"{path}:1: rules: the file must hold a list under rules:"]
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


def load_rule_files(directory: Path) -> dict[str, AlertRule]:
    """Load every rules file in a directory; raise ConfigError with every problem found."""
    rules: dict[str, AlertRule] = {}
    errors: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
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
    """The rules in force: the shipped files, with rules made or changed through the API on top."""

    def __init__(self, path: str | Path | None, shipped: dict[str, AlertRule] | None = None):
        self.shipped = dict(load_rule_files(ConfigDir().alerts) if shipped is None else shipped)
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._own: dict[str, AlertRule] = {}
        self.problems: list[str] = []
        saved = load_json(
            self.path, lambda items: [AlertRule.model_validate(i) for i in items], self.problems
        )
        self._own = {rule.id: rule for rule in saved or ()}
        self.rules: dict[str, AlertRule] = {**self.shipped, **self._own}

    def put(self, rule: AlertRule) -> bool:
        """Add or replace a rule; return True when it is new."""
        with self._lock:
            new = rule.id not in self.rules
            self._commit({**self._own, rule.id: rule})
            return new

    def delete(self, rule_id: str) -> None:
        """Remove a rule made through the API; a changed shipped rule goes back to its file's version."""
        with self._lock:
            own = dict(self._own)
            del own[rule_id]
            self._commit(own)

    def _commit(self, own: dict[str, AlertRule]) -> None:
        """Write the rules made through the API, then put them in force (a failed write changes nothing)."""
        if self.path is not None:
            write_atomically(self.path, json.dumps([r.as_json() for r in own.values()], indent=1))
        self._own = own
        self.rules = {**self.shipped, **own}

    def is_own(self, rule_id: str) -> bool:
        return rule_id in self._own


_OPERATOR = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "==", "!=": "!="}
_PROM_AGG = {
    "avg": "avg_over_time",
    "min": "min_over_time",
    "max": "max_over_time",
    "sum": "sum_over_time",
    "last": "last_over_time",
    "count": "count_over_time",
    "p50": "quantile_over_time(0.5, ",
    "p95": "quantile_over_time(0.95, ",
    "p99": "quantile_over_time(0.99, ",
    "rate": "rate",
}


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{int(seconds * 1000)}ms"


def promql(rule: AlertRule) -> str:
    """Return the PromQL expression that a Prometheus server evaluates for a rule."""
    selector = f"{rule.query}[{_duration(rule.window)}]"
    if rule.predict is not None:
        inner = f"predict_linear({selector}, {rule.predict:g})"
    else:
        fn = _PROM_AGG[rule.aggregation]
        inner = f"{fn}{selector})" if fn.endswith(", ") else f"{fn}({selector})"
    return f"{inner} {_OPERATOR[rule.condition]} {rule.threshold:g}"


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
