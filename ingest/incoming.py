"""Samples that arrive in another protocol's shape (line protocol, remote write, OTLP): one set of rules.

A protocol adapter turns its body into a ``Batch`` (each series once, the samples in columns, each
able to say where in the body it came from); ``ProtocolIngest`` checks it (names and labels of series
not stored yet, every value and time at once, the series caps), declares names it has not seen by
Prometheus's conventions, and stores them all or none, through the store's one append path.
Refusals are ``MetricError``s naming the place in the body, as the JSON push's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from ingest.batch import Batch
from ingest.registration import RESERVED, MetricError
from ingest.sample_rules import FUTURE_TOLERANCE, MAX_LABEL_VALUE, iso, store_totals
from tsdb.metrics import LABEL_NAME, METRIC_NAME, STORED, Labels, MetricSpec, freeze_labels
from tsdb.store import SeriesLimitError, Store


class BodyError(ValueError):
    """A request body a protocol adapter cannot read; ``field`` names where (a line, the body)."""

    def __init__(self, message: str, field: str = "body"):
        super().__init__(message)
        self.field = field


PROTOCOLS = "protocol:"  # how the names each protocol declared are owned: protocol:influx, ...


def kind_by_convention(name: str) -> str:
    """Return a metric's type from its name, as Prometheus' conventions have it."""
    if name.endswith("_total") or name.endswith(("_bucket", "_count", "_sum")):
        return "counter"
    return "gauge"


class ProtocolIngest:
    """Check and store samples from any protocol adapter, all or nothing per request."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        sample_cap: int = 10_000,
        series_cap: int = 10_000,
    ):
        self.store = store
        self.clock = clock
        self.sample_cap = sample_cap
        self.series_cap = series_cap
        self._lock = threading.Lock()

    def accept(
        self,
        batch: Batch,
        protocol: str,
        kinds: dict[str, str] | None = None,
        nan_ok: bool = False,
        relayed: bool = False,
    ) -> int:
        """Check every sample, declare new names, store them all; raise MetricError storing nothing.

        ``nan_ok``: NaN values are samples (and staleness markers), as remote write sends them.
        ``relayed``: samples a Prometheus server scraped (each carries its target's ``job``): they may
        be of names another producer declared, Pulseboard's own among them (an agent's), and leave
        those declarations as they are.
        """
        self.expect(len(batch))
        now = self.clock()
        self._check_values(batch, now, now - max(t.retention for t in self.store.tiers), nan_ok)
        keys = batch.keys

        def admit(new: list[int]) -> None:  # under the store's lock, before anything is kept
            fresh: dict[str, set] = {}
            for row in new:
                name, labels = keys[row]
                wrong = self._wrong_series(name, labels)
                if wrong:
                    where = batch.where(batch.first_of(row))
                    raise MetricError(f"{where}: {wrong}", field=where)
                fresh.setdefault(name, set()).add(labels)
            for name, more in fresh.items():
                if len(self.store.series(name)) + len(more) > self.series_cap:
                    raise MetricError(
                        f"{name} would pass its cap of {self.series_cap:,} series (label sets)", 422, "body"
                    )
            if fresh:
                self.store.admit([keys[row] for row in new])
            for spec in self._declarations(keys, {name for name, _ in keys}, kinds or {}, relayed, protocol):
                self.store.declare(spec, owner=PROTOCOLS + protocol)

        with self._lock:
            try:
                return self.store.append_rows(
                    keys, batch.rows, batch.times, batch.values, durable=True, admit=admit
                )
            except SeriesLimitError as exc:
                raise MetricError(str(exc), 422, "body") from None

    def check(self, batch: Batch, nan_ok: bool = False, relayed: bool = False) -> None:
        """Check a request to forward as ``accept`` checks one to store (values, times, names, labels);
        raise MetricError naming the first sample at fault."""
        self.expect(len(batch))
        now = self.clock()
        self._check_values(batch, now, now - max(t.retention for t in self.store.tiers), nan_ok)
        for row, (name, labels) in enumerate(batch.keys):
            wrong = self._wrong_series(name, labels)
            if (
                wrong is None
                and name.startswith(RESERVED)
                and not (relayed and any(k == "job" for k, _ in labels))
            ):
                wrong = f"{name}: names starting with {RESERVED} are Pulseboard's own; choose another"
            if wrong:
                where = batch.where(batch.first_of(row))
                raise MetricError(f"{where}: {wrong}", field=where)

    def _declarations(
        self,
        keys: list[tuple[str, Labels]],
        names: set[str],
        kinds: dict[str, str],
        relayed: bool,
        protocol: str,
    ) -> list[MetricSpec]:
        """Return the declarations the request's new names need; refuse names it may not write."""
        declare = []
        jobless = None
        specs, owner = self.store.specs, PROTOCOLS + protocol
        for name in sorted(names):
            known = specs.get(name)
            if known is not None and specs.owner(name) == owner and kinds.get(name, known.type) == known.type:
                continue  # declared by this protocol before, the same type: the common case
            kind = kinds.get(name) or kind_by_convention(name)
            if relayed and jobless is None:
                jobless = {name for name, labels in keys if not any(k == "job" for k, _ in labels)}
            if relayed and name not in jobless and (name.startswith(RESERVED) or self.store.specs.get(name)):
                if self.store.specs.get(name) is None and not name.startswith(RESERVED):
                    declare.append(MetricSpec(name, kind))
                continue
            if name.startswith(RESERVED):
                raise MetricError(
                    f"{name}: names starting with {RESERVED} are Pulseboard's own; choose another",
                    409,
                    "body",
                )
            known, producer = self.store.specs.get(name), self.store.specs.owner(name)
            if known is not None and producer != STORED and not producer.startswith(PROTOCOLS):
                raise MetricError(
                    f"{name} is declared by {producer} (a {known.type}); another protocol may not "
                    "write into it: choose another name",
                    409,
                    "body",
                )
            if known is not None and producer != STORED:
                if known.type != kind and kinds.get(name) is not None:
                    raise MetricError(
                        f"{name} is a {known.type} here; this request sends it as a {kind}", 409, "body"
                    )
                continue
            declare.append(MetricSpec(name, kind))
        return declare

    def expect(self, count: int) -> None:
        """Refuse (413) a request that would expand to more than ``sample_cap`` samples, before it does."""
        if count > self.sample_cap:
            raise MetricError(
                f"a request may carry at most {self.sample_cap:,} samples (it has {count:,}); "
                "send smaller batches",
                413,
                "body",
            )

    def running_totals(self) -> Callable[[str, dict[str, str], float], float]:
        """Return a function that adds a delta to a series' running total (from the store, then kept)."""
        add = store_totals(self.store)
        return lambda name, labels, delta: add(name, freeze_labels(labels), delta)

    def describe(self, specs: list[MetricSpec], protocol: str) -> None:
        """Take the help, unit and type a protocol's metadata gives its names, where no other producer
        declared them and the type stays what it was; others are left as they are."""
        owner = PROTOCOLS + protocol
        with self._lock:
            for spec in specs:
                if spec.name.startswith(RESERVED):
                    continue
                known, producer = self.store.specs.get(spec.name), self.store.specs.owner(spec.name)
                if known is None or producer == STORED or (producer == owner and known.type == spec.type):
                    self.store.declare(spec, owner)

    @staticmethod
    def _wrong_series(name: str, labels: Labels) -> str | None:
        """Return what is wrong with a new series' name or labels, or None."""
        if not METRIC_NAME.fullmatch(name):
            return f"metric name {name!r} must match {METRIC_NAME.pattern}"
        for key, value in labels:
            if not LABEL_NAME.fullmatch(key) or key.startswith("__"):
                return f"label name {key!r} must match {LABEL_NAME.pattern} and not start with __"
            if len(value) > MAX_LABEL_VALUE:
                return f"label {key} is longer than {MAX_LABEL_VALUE} characters"
        return None

    @staticmethod
    def _check_values(batch: Batch, now: float, oldest: float, nan_ok: bool) -> None:
        """Refuse the first sample whose value or time cannot be kept, all samples checked at once."""
        values, times = batch.values, batch.times
        good = np.isfinite(values)
        if nan_ok:
            good |= np.isnan(values)
        if not good.all():
            k = int(np.argmin(good))
            where = batch.where(k)
            raise MetricError(f"{where}: the value must be a finite number (got {values[k]})", field=where)
        ahead = times > now + FUTURE_TOLERANCE
        if ahead.any():
            k = int(np.argmax(ahead))
            where = batch.where(k)
            raise MetricError(
                f"{where}: time {iso(times[k])} is more than {FUTURE_TOLERANCE / 60:.0f} minutes ahead "
                "of this host's clock (is the precision right?)",
                field=where,
            )
        old = ~(times >= oldest)  # NaN times are refused here too
        if old.any():
            k = int(np.argmax(old))
            where = batch.where(k)
            raise MetricError(
                f"{where}: time {iso(times[k])} is older than the history Pulseboard keeps "
                f"(the oldest accepted now is {iso(oldest)}; is the precision right?)",
                field=where,
            )
