"""Metrics that applications define and push: the registry of their definitions, and recording.

The rules live beside it: ``registration`` for definitions, ``sample_rules`` for samples. The
definitions are kept where ``saved`` keeps them (the state database, shared by replicas); with a
``forward``, samples go on to the metrics server instead of the store.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ingest.forward import Forwarder
from ingest.registration import RESERVED, MetricError, parse_registration
from ingest.sample_rules import check_samples, gauge_columns, running_series, store_totals, to_samples
from tsdb.metrics import STORED, MetricSpec
from tsdb.store import SeriesLimitError, Store

# What a registered name keeps (409 otherwise), by declaration field and the API field that sets it.
KEPT = {"type": "type", "labels": "labels", "unit": "unit", "category": "category", "level": "access"}
OWNER = "push"  # the producer pushed metrics are declared by

if TYPE_CHECKING:
    from dashboard_app.state.definitions import SavedDefinitions


class CustomMetrics:
    """Register metrics and record their samples into the store, all or nothing per request."""

    def __init__(
        self,
        store: Store,
        saved: SavedDefinitions | None = None,
        clock: Callable[[], float] = time.time,
        series_cap: int = 10_000,
        sample_cap: int = 10_000,
        forward: Forwarder | None = None,
    ):
        self.store = store
        self.saved = saved
        self.forward = forward
        self.clock = clock
        self.series_cap = series_cap
        self.sample_cap = sample_cap
        self.definitions: dict[str, MetricSpec] = {}
        self._owner: dict[str, str] = {}  # every store name a definition uses -> the definition's name
        self._lock = threading.Lock()
        self._seen: dict = {}  # label objects of gauges found right, for the columns' path
        self.recorded = 0
        self.rejected = 0
        self.problems: list[str] = []
        self._read_at = -math.inf
        self.refresh()

    def refresh(self, names: list[str] | None = None) -> None:
        """Take the definitions registered on other replicas: all of them (at most once a second), or
        those of ``names`` not known here (at once: a push may follow its registration elsewhere)."""
        if self.saved is None:
            return
        if names is None and time.monotonic() - self._read_at < self.saved.fresh_for:
            return
        found = self.saved.all(names)
        with self._lock:
            for definition in found:
                if definition.name not in self.definitions:
                    try:
                        self._add(definition)
                    except ValueError as exc:  # a name this replica's own producers declared otherwise
                        self.problems.append(f"pushed metric {definition.name}: {exc}")
            if names is None:
                self._read_at = time.monotonic()

    # ----- registration
    def register(self, definition: MetricSpec | Mapping, save: bool = True, pushed: bool = False) -> bool:
        """Register a metric; return True when it is new, False when the same one was there.

        ``pushed``: the definition comes from outside (the API), so it may not take one of
        Pulseboard's own names, nor change what an existing name's readers and type are.
        """
        if not isinstance(definition, MetricSpec):
            definition = parse_registration(definition)
        if save and definition.name not in self.definitions:
            self.refresh([definition.name])  # perhaps registered on another replica
        with self._lock:
            known = self.definitions.get(definition.name)
            if known == definition:
                return False
            if known is not None:
                for name, field in KEPT.items():
                    was = getattr(known, name)
                    if was != getattr(definition, name):
                        shown = list(was) if name == "labels" else was
                        raise MetricError(
                            f"{definition.name} is registered with {field} {shown!r}; "
                            f"a registered name keeps its {', '.join(KEPT.values())}",
                            409,
                            field,
                        )
            if pushed and definition.name.startswith(RESERVED):
                raise MetricError(
                    f"names starting with {RESERVED} are Pulseboard's own; choose another name", 409, "name"
                )
            for spec in definition.parts():
                other = self.store.specs.get(spec.name)
                owner = self._owner.get(spec.name)
                # A push may not take over a name another producer declared (a scrape's, say: its
                # readers would change); the registry refuses any producer a different type.
                producer = self.store.specs.owner(spec.name)
                taken = pushed and producer not in (OWNER, STORED)
                if other is not None and owner != definition.name and (taken or other.type != spec.type):
                    raise MetricError(
                        f"{spec.name} is already declared (a {other.type}) by {producer}; "
                        "choose another name",
                        409,
                        "name",
                    )
            if save and self.saved is not None:
                self.saved.add(definition)  # kept first: a failed write registers nothing
            self._add(definition)
            return True

    def _add(self, definition: MetricSpec) -> None:
        for spec in definition.parts():
            self.store.specs.declare(spec, OWNER)
            self._owner[spec.name] = definition.name
        self.definitions[definition.name] = definition

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
        unknown = {s.get("name") for s in samples if isinstance(s, Mapping)} - self.definitions.keys()
        if unknown:  # perhaps registered on another replica
            self.refresh([n for n in unknown if isinstance(n, str)])
        now = self.clock()
        if self.forward is not None:
            return self._forward(samples, now)
        oldest = now - max(t.retention for t in self.store.tiers)
        with self._lock:
            try:
                columns = gauge_columns(samples, self.definitions, self._seen, now, oldest)
                if columns is None:
                    checked = check_samples(
                        samples, self.definitions, self.store, now, self.series_cap, self._seen
                    )
                    stored = self.store.append(to_samples(checked, store_totals(self.store)), durable=True)
                else:
                    keys, rows, ts, val = columns
                    stored = self.store.append_rows(
                        keys, rows, ts, val, durable=True, admit=lambda new: self._admit(keys, new)
                    )
            except MetricError:
                self.rejected += 1
                raise
            except SeriesLimitError as exc:
                self.rejected += 1
                raise MetricError(str(exc), 422, "samples") from None
            self.recorded += len(samples)
            return stored

    def _forward(self, samples: list, now: float) -> int:
        """Check as for the store, then send to the metrics server with the replicas' running totals."""
        try:
            checked = check_samples(samples, self.definitions, self.store, now, self.series_cap)
            with self.forward.adding(running_series(checked)) as add:
                sent = self.forward.send_samples(to_samples(checked, add))
        except MetricError:
            self.rejected += 1
            raise
        self.recorded += len(samples)
        return sent

    def _admit(self, keys: list, new: list[int]) -> None:
        """Refuse (422) new series that would pass a name's cap; called before anything is stored."""
        fresh: dict[str, int] = {}
        for row in new:
            fresh[keys[row][0]] = fresh.get(keys[row][0], 0) + 1
        for name, count in fresh.items():
            if len(self.store.series(name)) + count > self.series_cap:
                raise MetricError(
                    f"{name} would pass its cap of {self.series_cap:,} series (label sets)", 422, "labels"
                )
