"""Samples and metric declarations shared by every producer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

# Names are checked with fullmatch: "$" would also match before a final newline, which breaks /metrics.
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Who may read a metric: the users given its level (admins read every level, and metrics of none).
ACCESS_LEVELS = ("executive", "operations", "development")
METRIC_TYPES = ("gauge", "counter", "histogram", "summary")
# A histogram or summary keeps each observation as a sample of its own series (so percentiles
# come from the samples) and running totals in <name>_count and <name>_sum.
OBSERVED_TYPES = ("histogram", "summary")
# Units are base units (Prometheus conventions); charts scale them for display.
UNITS = (
    "none",
    "ratio",
    "percent",
    "bytes",
    "bytes_per_second",
    "seconds",
    "per_second",
    "count",
    "currency",
)

# Seconds without a sample after which a series has stopped (Prometheus' staleness): it leaves
# "latest" answers, /metrics and stat panels instead of showing its last value forever.
STALE_AFTER = 300.0

Labels = tuple[tuple[str, str], ...]


def freeze_labels(labels: Mapping[str, str] | None) -> Labels:
    """Return labels as a sorted tuple of pairs, the form series keys use."""
    if not labels:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


class Sample(NamedTuple):
    """One observation of one series: name, labels, value, Unix timestamp."""

    name: str
    labels: Labels
    value: float
    timestamp: float


@dataclass(frozen=True)
class MetricSpec:
    """A metric a collector produces: the one source for units, help and axis titles."""

    name: str
    type: str
    unit: str
    help: str
    level: str | None = None  # the access level of its readers; None: admins only

    def __post_init__(self) -> None:
        if not METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"metric name {self.name!r} must match {METRIC_NAME.pattern}")
        if self.level is not None and self.level not in ACCESS_LEVELS:
            raise ValueError(
                f"metric {self.name}: level {self.level!r} is not one of {', '.join(ACCESS_LEVELS)}"
            )
        if self.type not in METRIC_TYPES:
            raise ValueError(
                f"metric {self.name}: type {self.type!r} is not one of {', '.join(METRIC_TYPES)}"
            )
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.name}: unit {self.unit!r} is not one of {', '.join(UNITS)}")

    def parts(self) -> tuple[MetricSpec, ...]:
        """Return this declaration and, for a histogram or summary, its running totals' declarations."""
        if self.type not in OBSERVED_TYPES:
            return (self,)
        return (
            self,
            MetricSpec(f"{self.name}_count", "counter", "count", f"Observations of {self.name}.", self.level),
            MetricSpec(
                f"{self.name}_sum", "counter", self.unit, f"Sum of observations of {self.name}.", self.level
            ),
        )


class Collector(Protocol):
    """Anything the scheduler runs: a name, its metric table and ``collect()``."""

    name: str
    metrics: tuple[MetricSpec, ...]

    def collect(self) -> list[Sample]:
        """Return the samples of one collection."""
        ...


class CounterRates:
    """Turn ever-growing counters into per-second rates.

    The first reading of a key has no rate; a counter that went down was reset, so
    its new value is the increase since the reset, never a negative rate.
    """

    def __init__(self) -> None:
        self._last: dict[object, tuple[float, float]] = {}

    def rate(self, key: object, value: float, timestamp: float) -> float | None:
        """Record a counter reading and return its rate since the previous one."""
        previous = self._last.get(key)
        self._last[key] = (value, timestamp)
        if previous is None or timestamp <= previous[1]:
            return None
        increase = value - previous[0]
        if increase < 0:
            increase = value
        return increase / (timestamp - previous[1])
