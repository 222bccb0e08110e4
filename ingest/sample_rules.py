"""Rules for pushed samples: each one against its registration, its series and the store's history."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np

from ingest.paths import API_PREFIX
from ingest.registration import MetricError
from tsdb.metrics import Labels, MetricSpec, Sample
from tsdb.store import Store

Checked = tuple[MetricSpec, Labels, float, float]  # a pushed value: its registration, labels, value, time

FUTURE_TOLERANCE = 600.0  # seconds a pushed timestamp may run ahead of this host's clock
MAX_LABEL_VALUE = 1024
SEEN_HELD = 100_000  # label objects of pushed gauges remembered as right


def check_samples(
    samples: list,
    definitions: Mapping[str, MetricSpec],
    store: Store,
    now: float,
    series_cap: int,
    seen: dict | None = None,
) -> list[Checked]:
    """Check pushed samples against their registrations and the store; raise MetricError at the first.
    Return them checked, for ``running_series`` and ``to_samples``.

    ``seen`` learns the label objects of gauges found right, for ``gauge_columns``."""
    oldest = now - max(t.retention for t in store.tiers)
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
        definition = definitions.get(name) if isinstance(name, str) else None
        if definition is None:
            raise MetricError(
                f"{where}: metric {name!r} is not registered; register it first with "
                f"POST {API_PREFIX}/metrics/custom/register",
                404,
                f"{where}.name",
            )
        raw = item.get("labels", {})
        labels = _labels(raw, definition, where)
        if seen is not None and definition.type == "gauge" and all(type(v) is str for v in raw.values()):
            if len(seen) >= SEEN_HELD:
                seen.clear()
            seen[(name, tuple(raw.items()) if raw else ())] = (name, labels)
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
                f"{where}.timestamp {iso(ts)} is {ts - now:,.0f} s in the future by this host's clock; "
                f"at most {FUTURE_TOLERANCE / 60:.0f} minutes ahead is accepted",
                field=f"{where}.timestamp",
            )
        if ts < oldest:
            raise MetricError(
                f"{where}.timestamp {iso(ts)} is older than the history Pulseboard keeps: "
                f"the oldest time accepted now is {iso(oldest)}",
                field=f"{where}.timestamp",
            )
        series = store.lookup(definition.name, labels)
        if series is None:
            new_series.setdefault(definition.name, set()).add(labels)
        elif definition.type != "gauge" and ts < store.newest(series.id):
            # A gauge's history can arrive late (a backfill); a counter's value is an increment
            # added to its running total, which only the newest end can take.
            raise MetricError(
                f"{where}.timestamp {iso(ts)} is older than the newest sample of this "
                f"{definition.type} ({iso(store.newest(series.id))}): its increments add to a "
                "running total, so they must arrive in time order (history of a new series may come "
                "in any order within one request)",
                field=f"{where}.timestamp",
            )
        parsed.append((definition, labels, float(value), float(ts)))
    for name, fresh in new_series.items():
        if len(store.series(name)) + len(fresh) > series_cap:
            raise MetricError(
                f"{name} would pass its cap of {series_cap:,} series (label sets)",
                422,
                "labels",
            )
    return parsed


_FIELDS = frozenset(("name", "labels", "value", "timestamp"))
_NUMBERS = (int, float)


def gauge_columns(
    samples: list, definitions: Mapping[str, MetricSpec], seen: dict, now: float, oldest: float
) -> tuple[list, np.ndarray, np.ndarray, np.ndarray] | None:
    """Return a push of gauges in columns (series keys, each sample's key, times, values), or None when
    any sample is not plainly right: of a gauge, with labels ``check_samples`` accepted before (``seen``
    holds them), numbers for value and time, both within the history kept. A None is then checked
    sample by sample by ``check_samples``, which names the first mistake."""
    keys: list = []
    index: dict = {}
    rows: list[int] = []
    times: list = []
    values: list = []
    for item in samples:
        if type(item) is not dict or not _FIELDS.issuperset(item):
            return None
        labels = item.get("labels")
        try:
            found = seen.get((item["name"], tuple(labels.items()) if labels else ()))
        except (KeyError, TypeError, AttributeError):  # no name, labels not an object, unhashable values
            return None
        value, at = item.get("value"), item.get("timestamp", now)
        if found is None or type(value) not in _NUMBERS or type(at) not in _NUMBERS:
            return None
        row = index.get(found)
        if row is None:
            row = index[found] = len(keys)
            keys.append(found)
        rows.append(row)
        values.append(value)
        times.append(at)
    try:
        val = np.asarray(values, dtype=np.float64)
        ts = np.asarray(times, dtype=np.float64)
    except OverflowError:  # an integer past any float
        return None
    if not (np.isfinite(val).all() and (ts >= oldest).all() and (ts <= now + FUTURE_TOLERANCE).all()):
        return None
    return keys, np.asarray(rows, dtype=np.int64), ts, val


def store_totals(store: Store) -> Callable[[str, Labels, float], float]:
    """A function adding an increment to a series' running total, starting from its newest value in the
    store: ``(name, labels, increment) -> total``."""
    totals: dict[tuple[str, Labels], float] = {}

    def add(name: str, labels: Labels, inc: float) -> float:
        key = (name, labels)
        if key not in totals:
            series = store.lookup(name, labels)
            last = store.last_value(series.id) if series else math.nan
            totals[key] = 0.0 if math.isnan(last) else last
        totals[key] += inc
        return totals[key]

    return add


def running_series(checked: list[Checked]) -> list[tuple[str, Labels]]:
    """The series whose running totals checked samples add to: counters', observations' count and sum."""
    out = []
    for definition, labels, _, _ in checked:
        if definition.type == "counter":
            out.append((definition.name, labels))
        elif definition.type != "gauge":
            out += [(f"{definition.name}_count", labels), (f"{definition.name}_sum", labels)]
    return out


def to_samples(checked: list[Checked], add: Callable[[str, Labels, float], float]) -> list[Sample]:
    """Turn checked values into samples: counters and observation totals become running totals."""
    out = []
    for definition, labels, value, ts in sorted(checked, key=lambda p: p[3]):
        name = definition.name
        if definition.type == "counter":
            out.append(Sample(name, labels, add(name, labels, value), ts))
        elif definition.type == "gauge":
            out.append(Sample(name, labels, value, ts))
        else:
            out.append(Sample(name, labels, value, ts))
            out.append(Sample(f"{name}_count", labels, add(f"{name}_count", labels, 1.0), ts))
            out.append(Sample(f"{name}_sum", labels, add(f"{name}_sum", labels, value), ts))
    return out


def iso(t: float) -> str:
    """Return Unix seconds as an RFC 3339 UTC time, for messages."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _labels(raw: object, definition: MetricSpec, where: str) -> tuple[tuple[str, str], ...]:
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
