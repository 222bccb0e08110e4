"""Translate Pulseboard's selectors and aggregations into PromQL, or say why one cannot be.

A Pulseboard range query asks for one value per series per step bucket; in PromQL that is a
``*_over_time`` function over a range of one step, evaluated at each bucket's end. Histograms are
read through their ``_bucket``, ``_sum`` and ``_count`` series, as Prometheus stores them.
"""

from __future__ import annotations

from collectors.aggregator import QueryError
from collectors.selector import Selector, quote

OVER_TIME = {
    "avg": "avg_over_time",
    "min": "min_over_time",
    "max": "max_over_time",
    "sum": "sum_over_time",
    "count": "count_over_time",
    "last": "last_over_time",
}
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
RATE_SPAN = 4  # a rate spans at least this many scrape intervals, so it always holds two samples


def selector(sel: Selector, name: str | None = None) -> str:
    """Return a selector in PromQL, optionally for another metric name (a histogram's parts)."""
    inner = ",".join(f"{m.label}{m.op}{quote(m.value)}" for m in sel.matchers)
    return f"{name or sel.name}{{{inner}}}" if inner else (name or sel.name)


def duration(seconds: float) -> str:
    """Return a PromQL range duration in whole milliseconds (at least 1 ms)."""
    return f"{max(1, round(seconds * 1000))}ms"


def over_window(sel: Selector, agg: str, span: float, kind: str | None, scrape: float) -> str:
    """Return PromQL for one value per series: ``agg`` over the trailing ``span`` seconds.

    ``kind`` is the metric type Prometheus reports (counter, gauge, histogram, summary or None);
    ``scrape`` is the scrape interval, which bounds how short a rate's range can be.
    """
    if kind == "histogram":
        return _histogram(sel, agg, span, scrape)
    if kind == "summary":
        return _summary(sel, agg, span, scrape)
    if agg == "rate":
        return f"rate({selector(sel)}[{duration(max(span, RATE_SPAN * scrape))}])"
    if agg in QUANTILES:
        return f"quantile_over_time({QUANTILES[agg]}, {selector(sel)}[{duration(span)}])"
    if agg in OVER_TIME:
        return f"{OVER_TIME[agg]}({selector(sel)}[{duration(span)}])"
    raise QueryError(f"aggregation {agg!r} has no PromQL translation")


def predict(sel: Selector, span: float, ahead: float) -> str:
    """Return PromQL for a least-squares line through the window, read ``ahead`` seconds on."""
    return f"predict_linear({selector(sel)}[{duration(span)}], {ahead:g})"


def _histogram(sel: Selector, agg: str, span: float, scrape: float) -> str:
    rng = f"[{duration(max(span, RATE_SPAN * scrape))}]"
    if agg in QUANTILES:
        return f"histogram_quantile({QUANTILES[agg]}, rate({selector(sel, sel.name + '_bucket')}{rng}))"
    return _totals(sel, agg, rng, "histogram")


def _summary(sel: Selector, agg: str, span: float, scrape: float) -> str:
    rng = f"[{duration(max(span, RATE_SPAN * scrape))}]"
    if agg in QUANTILES:
        raise QueryError(
            f"{sel.name} is a summary: its quantiles are fixed by the application; "
            f'query {sel.name}{{quantile="{QUANTILES[agg]}"}} with agg avg instead'
        )
    return _totals(sel, agg, rng, "summary")


def _totals(sel: Selector, agg: str, rng: str, kind: str) -> str:
    """The aggregations a histogram's or summary's running _sum and _count can answer exactly."""
    total, count = selector(sel, sel.name + "_sum"), selector(sel, sel.name + "_count")
    if agg == "avg":
        return f"rate({total}{rng}) / rate({count}{rng})"
    if agg == "count":
        return f"increase({count}{rng})"
    if agg == "sum":
        return f"increase({total}{rng})"
    if agg == "rate":
        return f"rate({count}{rng})"
    raise QueryError(
        f"{sel.name} is a {kind}: Prometheus keeps no single observations, so {agg!r} cannot be "
        "answered; use avg, count, sum, rate" + (" or p50/p95/p99" if kind == "histogram" else "")
    )
