"""What a PromQL editor offers while one types, and where a wrong text goes wrong.

``complete`` looks at the text before the cursor: in a label matcher's value it offers that label's
values, after ``{`` or ``,`` inside braces (and in ``by (...)``) label names, anywhere else metric names,
functions and keywords. The names come from the caller's source, so they are of the caller's levels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from query.promql.engine import AGGREGATIONS, SUPPORTED, parse
from query.promql.shorthand import expand
from query.promql.values import BadData
from query.promql.variables import quote_state, stand_in

FUNCTIONS = tuple(sorted(set(SUPPORTED) | AGGREGATIONS))
KEYWORDS = (
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
)
MOST = 30  # suggestions shown at once

_VALUE = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$')
_LABEL = re.compile(r"(?:\{|,)\s*([a-zA-Z_]\w*)?$")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([\w\s,]*?)([a-zA-Z_]\w*)?$")
_WORD = re.compile(r"([a-zA-Z_:][\w:]*)$")
_METRIC_BEFORE = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{[^{}]*$")


@dataclass(frozen=True)
class Suggestion:
    """One thing to put in: its text, what it is, and where the word it replaces starts."""

    text: str
    kind: str  # metric, function, keyword, label, value
    start: int


def complete(
    text: str,
    names: Callable[[], list[str]],
    labels: Callable[[str | None], list[str]],
    values: Callable[[str, str | None], list[str]],
    cursor: int | None = None,
) -> list[Suggestion]:
    """Return what fits at the cursor (the end by default), best first."""
    cursor = len(text) if cursor is None else max(0, min(cursor, len(text)))
    before = text[:cursor]
    if _inside_string(before):
        m = _VALUE.search(before)
        if not m:
            return []
        metric = _metric_of(before[: m.start()])
        typed = m.group(3)
        found = [v for v in values(m.group(1), metric) if v.startswith(typed) and v != typed]
        start = cursor - len(typed)
        return [Suggestion(v, "value", start) for v in found[:MOST]]
    brace = _open_brace(before)
    if brace is not None:
        m = _LABEL.search(before)
        if not m:
            return []
        typed = m.group(1) or ""
        metric = _metric_of(before[:brace])
        found = [name for name in labels(metric) if name.startswith(typed) and name != typed]
        return [Suggestion(name, "label", cursor - len(typed)) for name in found[:MOST]]
    m = _GROUPING.search(before)
    if m and before.count("(") > before.count(")"):
        typed = m.group(2) or ""
        found = [name for name in labels(None) if name.startswith(typed) and name != typed]
        return [Suggestion(name, "label", cursor - len(typed)) for name in found[:MOST]]
    m = _WORD.search(before)
    typed = m.group(1) if m else ""
    if not typed:
        return []
    start = cursor - len(typed)
    out = [Suggestion(f, "function", start) for f in FUNCTIONS if f.startswith(typed) and f != typed]
    out += [Suggestion(k, "keyword", start) for k in KEYWORDS if k.startswith(typed) and k != typed]
    metrics = [n for n in names() if n.startswith(typed) and n != typed]
    if len(metrics) < MOST:  # a word from the middle of a name finds it too: cpu finds node_cpu_seconds_total
        metrics += [n for n in names() if typed in n and not n.startswith(typed)]
    out += [Suggestion(n, "metric", start) for n in metrics]
    return out[:MOST]


def _inside_string(text: str) -> bool:
    return bool(quote_state(text)[1])


def _open_brace(text: str) -> int | None:
    """Where the brace the cursor stands in opened, or None outside braces (strings skipped)."""
    depth, at = 0, None
    for i, (ch, inside) in enumerate(zip(text, quote_state(text)[0])):
        if inside:
            continue
        if ch == "{":
            depth, at = depth + 1, i
        elif ch == "}":
            depth = max(0, depth - 1)
    return at if depth else None


def _metric_of(text: str) -> str | None:
    m = _METRIC_BEFORE.search(text) or _METRIC_BEFORE.search(text + "{")
    name = m.group(1) if m else None
    return None if name in FUNCTIONS or name in KEYWORDS else name


@dataclass(frozen=True)
class Problem:
    """Why a text is not PromQL, and the character (0-based) where it goes wrong."""

    message: str
    at: int


_PAIRS = {")": "(", "]": "[", "}": "{"}


def locate(text: str) -> Problem | None:
    """Return None when the text parses; else the reason and where it goes wrong."""
    try:
        parse(expand(stand_in(text), 60, 15))  # range variables and dashboard variables are PromQL here
        return None
    except BadData as exc:
        reason = str(exc).removeprefix('invalid parameter "query": ')
    stack: list[tuple[str, int]] = []
    states, ends_inside = quote_state(text)
    for i, (ch, inside) in enumerate(zip(text, states)):
        if inside:
            continue
        if ch in "([{":
            stack.append((ch, i))
        elif ch in ")]}":
            if not stack or stack[-1][0] != _PAIRS[ch]:
                return Problem(f"{reason}: '{ch}' closes nothing opened before it", i)
            stack.pop()
    if ends_inside:
        opened = max(i for i, inside in enumerate(states) if not inside and text[i] == ends_inside)
        return Problem(f"{reason}: the string opened here is not closed", opened)
    if stack:
        ch, i = stack[-1]
        return Problem(f"{reason}: the '{ch}' opened here is not closed", i)
    for m in re.finditer(r"([a-zA-Z_][\w:]*)\s*\(", text):
        name = m.group(1)
        if name not in FUNCTIONS and name not in KEYWORDS and not states[m.start()]:
            return Problem(f"{reason}: unknown function {name!r}", m.start())
    return Problem(reason, max(0, len(text.rstrip()) - 1))
