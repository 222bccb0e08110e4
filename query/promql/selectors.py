"""Series selection: which stored series a PromQL selector's matchers take, and their samples.

Matchers are Prometheus': ``=``, ``!=``, ``=~`` and ``!~``, regexes anchored at both ends and matched by
RE2 (linear time), a missing label counted as the empty value. Only metrics the caller may read are
considered; a selector naming one it may not read is refused with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import promql_parser

from query.promql.values import NAME, BadData, Budget, Labels
from tsdb.metrics import is_stale
from tsdb.selector import SelectorError, compile_regex
from tsdb.store import Store


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = _regex(self.name, self.value).fullmatch(value) is not None
        return found if self.op == "=~" else not found


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
_compiled: dict[str, object] = {}


def _regex(label: str, pattern: str):
    found = _compiled.get(pattern)
    if found is None:
        try:
            found = compile_regex(label, pattern)
        except SelectorError as exc:
            raise BadData(str(exc)) from None
        if len(_compiled) > 1000:
            _compiled.clear()
        _compiled[pattern] = found
    return found


def matcher_sets(selector: promql_parser.VectorSelector) -> list[list[Matcher]]:
    """Return the selector's matchers: one list, or one per ``or`` alternative."""

    def convert(items) -> list[Matcher]:
        out = [Matcher(m.name, _OPS[str(m.op).rsplit(".", 1)[-1]], m.value) for m in items]
        for m in out:
            if m.op in ("=~", "!~"):
                _regex(m.name, m.value)  # a bad or oversized pattern is refused before anything is read
        return out

    groups = [convert(selector.matchers.matchers)] if selector.matchers.matchers else []
    groups += [convert(g) for g in selector.matchers.or_matchers]
    if not groups:
        groups = [[]]
    if selector.name:
        groups = [[Matcher(NAME, "=", selector.name), *g] for g in groups]
    return groups


class Reader:
    """Read series and raw samples from the store, as one caller may."""

    def __init__(
        self,
        store: Store,
        visible: Callable[[str], bool],
        refuse: Callable[[str], None],
        budget: Budget | None = None,
    ):
        self.store = store
        self.visible = visible
        self.refuse = refuse  # raises the caller's refusal for a metric it may not read
        self.budget = budget if budget is not None else Budget()

    def names(self) -> list[str]:
        return [n for n in self.store.names() if self.visible(n)]

    def select(self, groups: list[list[Matcher]]) -> list[tuple[int, Labels]]:
        """Return (series id, labels) of every series the matchers take, sorted by labels."""
        found: dict[int, Labels] = {}
        for matchers in groups:
            named = [m.value for m in matchers if m.name == NAME and m.op == "="]
            if named:
                names = [n for n in set(named) if n in set(self.store.names())]
                for name in names:
                    if not self.visible(name):
                        self.refuse(name)
            else:
                names = self.names()
            name_matchers = [m for m in matchers if m.name == NAME]
            others = [m for m in matchers if m.name != NAME]
            for name in names:
                if not all(m.matches(name) for m in name_matchers):
                    continue
                serieses = self.store.series(name)
                self.budget.spend(len(serieses))  # a listing holds each series' labels
                for series in serieses:
                    labels = dict(series.labels)
                    if all(m.matches(labels.get(m.name, "")) for m in others):
                        found[series.id] = tuple(sorted({**labels, NAME: name}.items()))
        return sorted(found.items(), key=lambda item: item[1])

    def raw_from(self) -> float:
        """Unix seconds from which the raw tier holds every sample."""
        return self.store.clock() - self.store.tiers[0].retention

    def raw_only_from(self, reach_ms: int) -> float:
        """Unix seconds from which a step that reads ``reach_ms`` back reads raw samples only, now and
        later: past the raw tier's reach, and past the rollup buckets read before the raw samples (cut
        at their own step, so the cut moves in steps of the tier)."""
        rollups = [t for t in self.store.tiers[1:] if t.step * 1000 <= reach_ms] or list(
            self.store.tiers[1:2]
        )
        return self.raw_from() + (rollups[-1].step if rollups else 0.0) + reach_ms / 1000

    def buckets(self, series_id: int, start_ms: int, end_ms: int, range_ms: int) -> Buckets:
        """Read one series for windows of ``range_ms``: raw samples where the raw tier holds them, and
        before that the buckets of the coarsest rollup tier no wider than a window (select hints: the
        function and its range decide the tier, so a 30-day average reads minutes or hours, not seconds)."""
        parts = []
        horizon = self.raw_from()
        rollups = [t for t in self.store.tiers[1:] if t.step * 1000 <= range_ms] or list(
            self.store.tiers[1:2]
        )
        raw_start = start_ms
        if start_ms / 1000.0 < horizon and rollups:
            tier = rollups[-1]
            cut = math.ceil(horizon / tier.step) * tier.step  # buckets before, raw samples from here on
            raw_start = max(start_ms, round(cut * 1000))
            r = self.store.read_rollup(tier, series_id, start_ms / 1000.0 - tier.step, cut - tier.step)
            moments = np.round((r.start + tier.step) * 1000.0).astype(np.int64)
            keep = (r.count > 0) & (moments >= start_ms) & (moments <= min(end_ms, raw_start))
            parts.append((moments[keep], r.sum[keep], r.count[keep], r.min[keep], r.max[keep]))
        ts, val = self.samples_raw(series_id, raw_start, end_ms)
        parts.append((ts, val, np.ones(len(ts)), val, val))
        self.budget.spend(sum(len(p[0]) for p in parts))
        return Buckets(*(np.concatenate([p[i] for p in parts]) for i in range(5)))

    def samples_raw(self, series_id: int, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """One series' raw samples (ms, values) in [start, end], staleness markers left out."""
        ms, val = self._raw(series_id, start_ms, end_ms)
        keep = ~is_stale(val)
        return ms[keep], val[keep]

    def _raw(self, series_id: int, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """One series' raw samples (ms, values) in [start, end], NaNs and staleness markers kept."""
        # A millisecond more either side: samples are kept to the microsecond and counted to the millisecond.
        ts, val = self.store.read_raw(
            series_id, (start_ms - 1) / 1000.0, (end_ms + 1) / 1000.0, numbers_only=False
        )
        ms = np.round(ts * 1000.0).astype(np.int64)
        keep = (ms >= start_ms) & (ms <= end_ms)
        return ms[keep], val[keep]

    def samples(self, series_id: int, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Return one series' samples (ms, values) in [start, end], NaNs and staleness markers kept.

        Older than the raw tier keeps, the finest rollup stands in: each bucket's last value at the
        bucket's end, so long ranges answer at that resolution (exact answers need ``store.raw``'s
        retention to cover the range).
        """
        ms, val = self._raw(series_id, start_ms, end_ms)
        horizon = self.raw_from()
        if start_ms / 1000.0 < horizon and len(self.store.tiers) > 1:
            tier = self.store.tiers[1]
            upper = min(end_ms / 1000.0, horizon)
            older = self.store.read_rollup(tier, series_id, start_ms / 1000.0 - tier.step, upper - tier.step)
            moments = np.round((older.start + tier.step) * 1000.0).astype(np.int64)
            keep = (moments < (ms[0] if len(ms) else np.iinfo(np.int64).max)) & (moments >= start_ms)
            keep &= moments <= end_ms
            ms, val = np.concatenate([moments[keep], ms]), np.concatenate([older.last[keep], val])
        self.budget.spend(len(ms))
        return ms, val


@dataclass
class Buckets:
    """A series as summaries of spans: raw samples each their own span, older ones a rollup tier's buckets
    (each at the moment it closes). What ``*_over_time`` of sum, count, average, lowest and highest need."""

    times: np.ndarray  # int64 ms
    sum: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray


def without_stale(ts: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stale = is_stale(val)
    if stale.any():
        return ts[~stale], val[~stale]
    return ts, val
