"""Samples and metric declarations shared by every producer."""

from __future__ import annotations

import re
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

import numpy as np

# Names are checked with fullmatch: "$" would also match before a final newline, which breaks /metrics.
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Who may read a metric: the users given its level (admins read every level, and metrics of none).
ACCESS_LEVELS = ("executive", "operations", "development")
AccessLevel = Literal[ACCESS_LEVELS]  # the levels as a type, for the settings and dashboard schemas
# What a pushed metric is about, and who reads each kind when its registration names no level itself.
CATEGORIES = ("business", "rag", "application", "custom")
CATEGORY_LEVELS = {"business": "executive", "rag": "development", "application": "development"}
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
# Any other unit in Prometheus' naming (a name's last word: celsius, joules, volts, requests, ...) is
# accepted too; layouts.units scales the ones it knows and shows the others as they are.
UNIT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def valid_unit(unit: object) -> bool:
    """Return whether a unit is one Pulseboard takes: a known one, or a Prometheus unit name."""
    return isinstance(unit, str) and (unit in UNITS or UNIT_NAME.fullmatch(unit) is not None)


# Seconds without a sample after which a series has stopped (Prometheus' staleness): it leaves
# "latest" answers, /metrics and stat panels instead of showing its last value forever.
STALE_AFTER = 300.0

# Prometheus' staleness marker: a NaN with this bit pattern says "this series has ended here" (a target
# gone, a series no longer exposed). Other NaNs are ordinary samples.
STALE_BITS = 0x7FF0000000000002
STALE_MARKER = struct.unpack("<d", struct.pack("<Q", STALE_BITS))[0]


def is_stale(values: np.ndarray) -> np.ndarray:
    """Return where an array of values holds staleness markers."""
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64) == STALE_BITS


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
    """A metric's one declaration, whoever produces it (a collector, a scrape, a push, Pulseboard itself).

    It is the one source for the metric's type, unit (axis titles, numbers), help (/metrics, API docs),
    label names, category and access level (who may read it).
    """

    name: str
    type: str
    unit: str = "none"
    help: str = ""
    level: str | None = None  # the access level of its readers; None: admins only
    labels: tuple[str, ...] = ()  # the label names a pushed metric's samples carry (collectors: any)
    category: str = ""  # business, rag, application or custom for a pushed metric

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
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
        if not valid_unit(self.unit):
            raise ValueError(
                f"metric {self.name}: unit {self.unit!r} must be a unit name such as seconds, bytes or "
                f"celsius ({UNIT_NAME.pattern})"
            )

    def parts(self) -> tuple[MetricSpec, ...]:
        """Return this declaration and, for a histogram or summary, its running totals' declarations."""
        if self.type not in OBSERVED_TYPES:
            return (self,)
        common = {"level": self.level, "labels": self.labels, "category": self.category}
        return (
            self,
            MetricSpec(f"{self.name}_count", "counter", "count", f"Observations of {self.name}.", **common),
            MetricSpec(
                f"{self.name}_sum", "counter", self.unit, f"Sum of observations of {self.name}.", **common
            ),
        )


class MetricClash(ValueError):
    """A metric name declared a second time, differently, by another producer."""


STORED = "stored"  # the owner of a declaration read back from disk: its producer may declare it anew


class MetricRegistry(Mapping[str, MetricSpec]):
    """Every metric declared in one process, by name, with the producer that declared it.

    The one way in is ``declare``: a name another producer declared differently, or any producer with
    another type, fails there, at declaration, rather than at a scrape of /metrics or a read.
    """

    def __init__(self) -> None:
        self._specs: dict[str, MetricSpec] = {}
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def declare(self, spec: MetricSpec, owner: str) -> None:
        """Record a producer's declaration; raise MetricClash when another declared the name differently."""
        with self._lock:
            known, who = self._specs.get(spec.name), self._owners.get(spec.name)
            if (
                known is not None
                and who != STORED
                and known != spec
                and (who != owner or known.type != spec.type)
            ):
                raise MetricClash(
                    f"metric {spec.name} is declared by {who} as a {known.type} ({known.unit}); "
                    f"{owner} declares it as a {spec.type} ({spec.unit}): a name has one declaration"
                )
            if known is None or who in (owner, STORED):
                self._owners[spec.name] = owner
            self._specs[spec.name] = spec

    def remember(self, spec: MetricSpec) -> None:
        """Take a declaration read back from disk, unless the name is declared already."""
        with self._lock:
            if spec.name not in self._specs:
                self._specs[spec.name] = spec
                self._owners[spec.name] = STORED

    def owner(self, name: str) -> str | None:
        """Return who declared a name (None: nobody)."""
        return self._owners.get(name)

    def __getitem__(self, name: str) -> MetricSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._specs))

    def __len__(self) -> int:
        return len(self._specs)


class Collector(Protocol):
    """Anything the scheduler runs: a name, its metric table and ``collect()``."""

    name: str
    metrics: tuple[MetricSpec, ...]

    def collect(self) -> list[Sample]:
        """Return the samples of one collection."""
        ...
