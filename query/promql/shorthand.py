"""The dashboard shorthand (a series selector with ``agg``, ``over``, ``scale`` and ``smooth``) written as
the PromQL it means, and the range variables a panel's PromQL may use.

Compiled once when a dashboard is loaded; at each query ``$__interval`` becomes the panel's step and
``$__rate_interval`` the range a rate needs at that step (as Grafana has them):

- ``avg``, ``min``, ``max``, ``sum``, ``count``, ``last``: ``avg_over_time(sel[$__interval])`` ..., each
  point the aggregation of the samples of its step;
- ``p50``, ``p95``, ``p99``: ``quantile_over_time`` of observed values, or ``histogram_quantile`` of the
  rates of ``sel_bucket`` where the metric is a histogram of buckets;
- ``rate``: ``rate(sel[$__rate_interval])``;
- ``smooth: 5m``: the window becomes five minutes (``rate(sel[5m])``);
- ``over: other``: divided by the sum of the same over ``other`` (``on() group_left``), left out
  where that sum is zero: conversions over sessions is the ratio of their counts' increases, exact at
  any step when both are collected together (both rates' extrapolation is then the same);
- ``scale: 3600``: multiplied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from query.promql.engine import parse
from query.promql.printer import metric_names
from query.promql.values import BadData
from query.promql.variables import stand_in
from tsdb.aggregator import AGGREGATIONS
from tsdb.selector import Selector, SelectorError, parse_selector

QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}
INTERVAL, RATE_INTERVAL, RANGE = "$__interval", "$__rate_interval", "$__range"
_AVERAGE = re.compile(r"avg_over_time\((.+)\[\$__interval\]\)")  # each step's mean: its band is drawn
_VARIABLE = re.compile(r"\$__(?:rate_interval|interval|range)\b|\$\{__(?:rate_interval|interval|range)\}")


class ShorthandError(ValueError):
    """A panel query that cannot be compiled; the message says which field and why."""


@dataclass(frozen=True)
class Compiled:
    """A panel query as PromQL: what is drawn, the lowest and highest of each step (a bare average's
    band, None otherwise), and the metrics it reads."""

    promql: str
    band: tuple[str, str] | None
    metrics: tuple[str, ...]


def duration_text(value: float) -> str:
    """A duration as PromQL writes it: 5m, 1h30m, 90s, 250ms."""
    ms = round(value * 1000)
    if ms % 1000:
        return f"{ms}ms"
    seconds, text = ms // 1000, ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and (seconds % size == 0 or unit != "d"):
            text += f"{seconds // size}{unit}"
            seconds %= size
    return text + (f"{seconds}s" if seconds or not text else "")


def _term(text: str) -> str:
    """An operand of * or /, bracketed when it is an ``or`` of two."""
    return f"({text})" if " or " in text else text


def expand(text: str, step: float, scrape_interval: float, span: float | None = None) -> str:
    """Put a query's range variables in: ``$__interval`` the step, ``$__rate_interval`` the larger of
    step + scrape interval and four scrape intervals, ``$__range`` the span shown."""
    if "$" not in text:
        return text
    values = {
        "interval": duration_text(step),
        "rate_interval": duration_text(max(step + scrape_interval, 4 * scrape_interval)),
        "range": duration_text(span if span is not None else step),
    }
    return _VARIABLE.sub(lambda m: values[m.group(0).strip("${}").removeprefix("__")], text)


def is_selector(text: str) -> bool:
    """Whether a query is a bare series selector (the shorthand's form)."""
    try:
        parse_selector(text)
    except SelectorError:
        return False
    return True


def over_window(selector: str, agg: str, window: str) -> str:
    if agg == "rate":
        return f"rate({selector}[{window}])"
    if agg in QUANTILES:
        q = QUANTILES[agg]
        parsed = parse_selector(selector)
        buckets = str(Selector(parsed.name + "_bucket", parsed.matchers))
        if not any(m.label == "quantile" for m in parsed.matchers):  # a summary's own quantiles are not
            selector = str(parsed.narrowed({"quantile": ""}))  # observations: never a quantile of them
        rate_window = window if window != INTERVAL else RATE_INTERVAL
        observed = f"quantile_over_time({q}, {selector}[{window}])"
        return f"{observed} or histogram_quantile({q}, rate({buckets}[{rate_window}]))"
    return f"{agg}_over_time({selector}[{window}])"


def _band(selector: str) -> tuple[str, str]:
    """The lowest and the highest sample of each step: a zoomed-out line still reaches every spike."""
    return f"min_over_time({selector}[{INTERVAL}])", f"max_over_time({selector}[{INTERVAL}])"


@lru_cache(maxsize=4096)
def compile_query(
    expr: str, agg: str | None, over: str | None, scale: float, smooth: float | None
) -> Compiled:
    """Return a panel query as PromQL; raise ShorthandError naming the field that is wrong."""
    shaped = agg is not None or over is not None or scale != 1.0 or smooth is not None
    if not is_selector(expr):
        if shaped:
            raise ShorthandError(
                "expr: agg, over, scale and smooth shape a series selector; with a PromQL expression "
                "write them in it (e.g. rate(x[5m]) * 60)"
            )
        check(expr)
        average = _AVERAGE.fullmatch(expr.strip())
        band = _band(average.group(1)) if average and is_selector(average.group(1)) else None
        return Compiled(expr, band, tuple(metric_names(expand(stand_in(expr), 60, 15))))
    agg = agg or "avg"
    if agg not in AGGREGATIONS:
        raise ShorthandError(f"agg: {agg!r} is not one of {', '.join(AGGREGATIONS)}")
    window = duration_text(smooth) if smooth else (RATE_INTERVAL if agg == "rate" else INTERVAL)
    text = over_window(expr, agg, window)
    if over is not None:
        if not is_selector(over):
            raise ShorthandError("over: a series selector, e.g. pulseboard_business_sessions_total")
        text = f"{_term(text)} / on() group_left() (sum({over_window(over, agg, window)}) > 0)"
    if scale != 1.0:
        text = f"{_term(text)} * {scale:g}"
    band = None
    if agg == "avg" and over is None and smooth is None and scale == 1.0:
        band = _band(expr)
    names = [parse_selector(expr).name] + ([parse_selector(over).name] if over else [])
    return Compiled(text, band, tuple(dict.fromkeys(names)))


def check(text: str) -> None:
    """Raise ShorthandError with the parser's reason when a query is not PromQL."""
    try:
        parse(expand(stand_in(text), 60, 15))
    except BadData as exc:
        raise ShorthandError(str(exc).replace('invalid parameter "query": ', "")) from None
