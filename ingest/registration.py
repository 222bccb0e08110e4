"""Registration rules for pushed metrics: names, types, units, labels, categories and access levels."""

from __future__ import annotations

from collections.abc import Mapping

from tsdb.metrics import (
    ACCESS_LEVELS,
    CATEGORIES,
    CATEGORY_LEVELS,
    LABEL_NAME,
    METRIC_NAME,
    METRIC_TYPES,
    OBSERVED_TYPES,
    UNIT_NAME,
    UNITS,
    MetricSpec,
    valid_unit,
)

RESERVED = "pulseboard_"  # Pulseboard's own names: a push may only repeat a declaration it already has
FIELDS = ("name", "type", "help", "unit", "labels", "category", "access")


class MetricError(ValueError):
    """A definition or a sample that breaks a rule; ``status`` is the HTTP status that answers it."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


def parse_registration(body: object) -> MetricSpec:
    """Check a registration body field by field; raise MetricError naming the first that is wrong."""
    if not isinstance(body, Mapping):
        raise MetricError("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise MetricError(f"unknown field {unknown[0]!r}; allowed: {', '.join(FIELDS)}", field=unknown[0])
    name = body.get("name")
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        raise MetricError(f"name must be a string matching {METRIC_NAME.pattern}", field="name")
    kind = body.get("type")
    if kind not in METRIC_TYPES:
        raise MetricError(f"type must be one of {', '.join(METRIC_TYPES)}", field="type")
    help_text = body.get("help", "")
    if not isinstance(help_text, str) or len(help_text) > 1024:
        raise MetricError("help must be a string of at most 1024 characters", field="help")
    unit = body.get("unit", "") or "none"
    if not valid_unit(unit):
        raise MetricError(
            f"unit must be empty or a unit name in Prometheus' style ({UNIT_NAME.pattern}): a base unit such "
            f"as seconds, bytes, celsius or joules; Pulseboard scales {', '.join(UNITS)} and SI units",
            field="unit",
        )
    labels = body.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise MetricError("labels must be a list of label names", field="labels")
    for label in labels:
        if not LABEL_NAME.fullmatch(label) or label.startswith("__"):
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
    access = body.get("access", CATEGORY_LEVELS.get(category))
    if access is not None and access not in ACCESS_LEVELS:
        raise MetricError(
            f"access must be one of {', '.join(ACCESS_LEVELS)} (or left out: admins only)", field="access"
        )
    return MetricSpec(name, kind, unit, help_text, access, tuple(labels), category)


def registration(spec: MetricSpec) -> dict:
    """Return a pushed metric's declaration as the API answers it and its file keeps it."""
    return {
        "name": spec.name,
        "type": spec.type,
        "help": spec.help,
        "unit": spec.unit,
        "labels": list(spec.labels),
        "category": spec.category,
        "access": spec.level,
    }


def pushed(
    name: str, kind: str, help_text: str, unit: str, labels: tuple[str, ...], category: str
) -> MetricSpec:
    """Declare a metric of Pulseboard's catalog as a registration would: its category gives its readers."""
    return MetricSpec(name, kind, unit, help_text, CATEGORY_LEVELS.get(category), labels, category)
