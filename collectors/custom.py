"""Metrics that applications define and push: registration rules, recording, and their file on disk."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from collectors.metrics import (
    LABEL_NAME,
    METRIC_NAME,
    METRIC_TYPES,
    OBSERVED_TYPES,
    UNITS,
    MetricSpec,
    Sample,
)
from collectors.persistence import load_json, write_atomically
from collectors.store import SeriesLimitError, Store

CATEGORIES = ("business", "rag", "application", "custom")
FUTURE_TOLERANCE = 600.0  # seconds a pushed timestamp may run ahead of this host's clock
MAX_LABEL_VALUE = 1024


class MetricError(ValueError):
    """A definition or a sample that breaks a rule; ``status`` is the HTTP status that answers it."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class MetricDefinition:
    """A registered metric: what it measures, how its values add up, and its label names."""

    name: str
    type: str
    help: str = ""
    unit: str = "none"
    labels: tuple[str, ...] = ()
    category: str = "custom"

    @classmethod
    def parse(cls, body: object) -> MetricDefinition:
        """Check a registration body field by field; raise MetricError naming the first that is wrong."""
        if not isinstance(body, Mapping):
            raise MetricError("the body must be a JSON object", field="body")
        unknown = sorted(set(body) - {"name", "type", "help", "unit", "labels", "category"})
        if unknown:
            raise MetricError(
                f"unknown field {unknown[0]!r}; allowed: name, type, help, unit, labels, category",
                field=unknown[0],
            )
        name = body.get("name")
        if not isinstance(name, str) or not METRIC_NAME.match(name):
            raise MetricError(f"name must be a string matching {METRIC_NAME.pattern}", field="name")
        kind = body.get("type")
        if kind not in METRIC_TYPES:
            raise MetricError(f"type must be one of {', '.join(METRIC_TYPES)}", field="type")
        help_text = body.get("help", "")
        if not isinstance(help_text, str) or len(help_text) > 1024:
            raise MetricError("help must be a string of at most 1024 characters", field="help")
        unit = body.get("unit", "") or "none"
        if unit not in UNITS:
            raise MetricError(f"unit must be empty or one of {', '.join(UNITS)}", field="unit")
        labels = body.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise MetricError("labels must be a list of label names", field="labels")
        for label in labels:
            if not LABEL_NAME.match(label) or label.startswith("__"):
                raise MetricError(
                    f"label name {label!r} must match {LABEL_NAME.pattern} and not start with __",
                    field="labels",
                )
        if len(set(labels)) != len(labels):
            raise MetricError("labels must not repeat a name", field="labels")
        if kind in OBSERVED_TYPES and ("le" in labels or "quantile" in labels):
            raise MetricError(f"a {kind} cannot have a label named le or quantile", field="labels")
        category = body.get("category", "custom")
        if category not in CATEGORIES:
            raise MetricError(f"category must be one of {', '.join(CATEGORIES)}", field="category")
        return cls(name, kind, help_text, unit, tuple(labels), category)

    def specs(self) -> list[MetricSpec]:
        """Return the store declarations: the metric, and its running totals for a histogram or summary."""
        if self.type not in OBSERVED_TYPES:
            return [MetricSpec(self.name, self.type, self.unit, self.help)]
        return [
            MetricSpec(self.name, self.type, self.unit, self.help),
            MetricSpec(f"{self.name}_count", "counter", "count", f"Observations of {self.name}."),
            MetricSpec(f"{self.name}_sum", "counter", self.unit, f"Sum of observations of {self.name}."),
        ]

    def as_dict(self) -> dict:
        out = asdict(self)
        out["labels"] = list(self.labels)
        return out


class CustomMetrics:
    """Register metrics and record their samples into the store, all or nothing per request."""

    def __init__(
        self,
        store: Store,
        path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        series_cap: int = 10_000,
        sample_cap: int = 10_000,
    ):
        self.store = store
        self.path = Path(path) if path else None
        self.clock = clock
        self.series_cap = series_cap
        self.sample_cap = sample_cap
        self.definitions: dict[str, MetricDefinition] = {}
        self._owner: dict[str, str] = {}  # every store name a definition uses -> the definition's name
        self._lock = threading.Lock()
        self.recorded = 0
        self.rejected = 0
        self.problems: list[str] = []
        saved = load_json(
            self.path,
            lambda items: [MetricDefinition(**{**i, "labels": tuple(i["labels"])}) for i in items],
            self.problems,
        )
        for definition in saved or ():
            self._add(definition)

    # ----- registration
    def register(self, definition: MetricDefinition | Mapping, save: bool = True) -> bool:
        """Register a metric; return True when it is new, False when the same one was there."""
        if not isinstance(definition, MetricDefinition):
            definition = MetricDefinition.parse(definition)
        with self._lock:
            known = self.definitions.get(definition.name)
            if known == definition:
                return False
            if known is not None:
                if known.type != definition.type:
                    raise MetricError(
                        f"{definition.name} is registered as a {known.type}; a name keeps one type",
                        409,
                        "type",
                    )
                if known.labels != definition.labels:
                    raise MetricError(
                        f"{definition.name} is registered with labels {list(known.labels)}; "
                        "a name keeps its label names",
                        409,
                        "labels",
                    )
            for spec in definition.specs():
                other = self.store.specs.get(spec.name)
                owner = self._owner.get(spec.name)
                if other is not None and other.type != spec.type and owner != definition.name:
                    raise MetricError(
                        f"{spec.name} is already a {other.type}; a name keeps one type", 409, "name"
                    )
            self._add(definition)
            if save:
                self._save()
            return True

    def _add(self, definition: MetricDefinition) -> None:
        for spec in definition.specs():
            self.store.specs[spec.name] = spec
            self._owner[spec.name] = definition.name
        self.definitions[definition.name] = definition

    def _save(self) -> None:
        if self.path is not None:
            write_atomically(
                self.path, json.dumps([d.as_dict() for d in self.definitions.values()], indent=1)
            )

    # ----- recording
    def record(self, samples: object) -> int:
        """Check every sample, then store them all; raise MetricError and store nothing if one is wrong."""
        if not isinstance(samples, list):
            raise MetricError("samples must be a list of samples", field="samples")
        if not samples:
            raise MetricError("samples must hold at least one sample", field="samples")
        if len(samples) > self.sample_cap:
            raise MetricError(
                f"a request may carry at most {self.sample_cap:,} samples; split it into batches",
                413,
                "samples",
            )
        with self._lock:
            try:
                out = self._check(samples)
            except MetricError:
                self.rejected += 1
                raise
            try:
                stored = self.store.append(out)
            except SeriesLimitError as exc:
                self.rejected += 1
                raise MetricError(str(exc), 422, "samples") from None
            self.recorded += len(samples)
            return stored

    def _check(self, samples: list) -> list[Sample]:
        now = self.clock()
        oldest = now - max(t.retention for t in self.store.tiers)
        parsed = []
        new_series: dict[str, set] = {}
        for i, item in enumerate(samples):
            where = f"samples[{i}]"
            if not isinstance(item, Mapping):
                raise MetricError(f"{where} must be an object with name, labels, value", field=where)
            unknown = sorted(set(item) - {"name", "labels", "value", "timestamp"})
            if unknown:
                raise MetricError(
                    f"{where}: unknown field {unknown[0]!r}; allowed: name, labels, value, timestamp",
                    field=f"{where}.{unknown[0]}",
                )
            name = item.get("name")
            definition = self.definitions.get(name) if isinstance(name, str) else None
            if definition is None:
                raise MetricError(
                    f"{where}: metric {name!r} is not registered; register it first with "
                    "POST /api/v1/monitoring/metrics/custom/register",
                    404,
                    f"{where}.name",
                )
            labels = _labels(item.get("labels", {}), definition, where)
            value = item.get("value")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise MetricError(f"{where}.value must be a finite number", field=f"{where}.value")
            if definition.type == "counter" and value < 0:
                raise MetricError(
                    f"{where}.value: a counter's increment must not be negative (got {value})",
                    field=f"{where}.value",
                )
            ts = item.get("timestamp", now)
            if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
                raise MetricError(
                    f"{where}.timestamp must be Unix seconds (a number)", field=f"{where}.timestamp"
                )
            if ts > now + FUTURE_TOLERANCE:
                raise MetricError(
                    f"{where}.timestamp {_iso(ts)} is {ts - now:,.0f} s in the future by this host's clock; "
                    f"at most {FUTURE_TOLERANCE / 60:.0f} minutes ahead is accepted",
                    field=f"{where}.timestamp",
                )
            if ts < oldest:
                raise MetricError(
                    f"{where}.timestamp {_iso(ts)} is older than the history Pulseboard keeps: "
                    f"the oldest time accepted now is {_iso(oldest)}",
                    field=f"{where}.timestamp",
                )
            series = self.store.lookup(definition.name, labels)
            if series is None:
                new_series.setdefault(definition.name, set()).add(labels)
            elif definition.type != "gauge" and ts < self.store.newest(series.id):
                # A gauge's history can arrive late (a backfill); a counter's value is an increment
                # added to its running total, which only the newest end can take.
                raise MetricError(
                    f"{where}.timestamp {_iso(ts)} is older than the newest sample of this "
                    f"{definition.type} ({_iso(self.store.newest(series.id))}): its increments add to a "
                    "running total, so they must arrive in time order (history of a new series may come "
                    "in any order within one request)",
                    field=f"{where}.timestamp",
                )
            parsed.append((definition, labels, float(value), float(ts)))
        for name, fresh in new_series.items():
            if len(self.store.series(name)) + len(fresh) > self.series_cap:
                raise MetricError(
                    f"{name} would pass its cap of {self.series_cap:,} series (label sets)",
                    422,
                    "labels",
                )
        return list(self._samples(parsed))

    def _samples(self, parsed: list[tuple[MetricDefinition, tuple, float, float]]) -> Iterable[Sample]:
        """Turn checked values into store samples: counters and observation totals become running totals."""
        totals: dict[tuple[str, tuple], float] = {}

        def add(name: str, labels: tuple, inc: float) -> float:
            key = (name, labels)
            if key not in totals:
                series = self.store.lookup(name, labels)
                last = self.store.last_value(series.id) if series else math.nan
                totals[key] = 0.0 if math.isnan(last) else last
            totals[key] += inc
            return totals[key]

        for definition, labels, value, ts in sorted(parsed, key=lambda p: p[3]):
            name = definition.name
            if definition.type == "counter":
                yield Sample(name, labels, add(name, labels, value), ts)
            elif definition.type == "gauge":
                yield Sample(name, labels, value, ts)
            else:
                yield Sample(name, labels, value, ts)
                yield Sample(f"{name}_count", labels, add(f"{name}_count", labels, 1.0), ts)
                yield Sample(f"{name}_sum", labels, add(f"{name}_sum", labels, value), ts)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _labels(raw: object, definition: MetricDefinition, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise MetricError(f"{where}.labels must be an object of label values", field=f"{where}.labels")
    if set(raw) != set(definition.labels):
        missing = sorted(set(definition.labels) - set(raw))
        extra = sorted(set(raw) - set(definition.labels))
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"not registered: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise MetricError(
            f"{where}.labels must be exactly {list(definition.labels)} ({detail})", field=f"{where}.labels"
        )
    out = []
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise MetricError(f"{where}.labels.{key} must be a string", field=f"{where}.labels.{key}")
        text = str(value)
        if len(text) > MAX_LABEL_VALUE:
            raise MetricError(
                f"{where}.labels.{key} is longer than {MAX_LABEL_VALUE} characters",
                field=f"{where}.labels.{key}",
            )
        out.append((key, text))
    return tuple(sorted(out))
