"""Prometheus-style series selectors: ``name{label="v", other!="w", third=~"re"}``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import re2

from tsdb.metrics import LABEL_NAME, METRIC_NAME

OPERATORS = ("=", "!=", "=~", "!~")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


MAX_REGEX = 1024  # characters in one =~ or !~ pattern
_RE2 = re2.Options()
_RE2.log_errors = False
_RE2.max_mem = 8 << 20  # a pattern whose automaton needs more is refused, not built


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message says where and what is allowed."""


def compile_regex(label: str, pattern: str):
    """Compile a label regex with RE2 (linear time, bounded memory) or raise SelectorError saying why."""
    # RE2 matches in linear time: no pattern can stall the process by backtracking.
    if len(pattern) > MAX_REGEX:
        raise SelectorError(f"label {label}: a regular expression has at most {MAX_REGEX} characters")
    try:
        return re2.compile(pattern, options=_RE2)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise SelectorError(
            f"label {label}: bad regular expression {pattern!r}: {reason} (RE2 syntax, as Prometheus)"
        ) from None


@dataclass(frozen=True)
class Matcher:
    """One label condition of a selector."""

    label: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", compile_regex(self.label, self.value))

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self._regex.fullmatch(actual) is not None  # anchored, as in PromQL
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """A metric name and label matchers."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def narrowed(self, equal: dict[str, str]) -> Selector:
        """Return this selector with label="value" conditions replacing any on the same labels."""
        if not equal:
            return self
        kept = tuple(m for m in self.matchers if m.label not in equal)
        return Selector(self.name, kept + tuple(Matcher(k, "=", v) for k, v in sorted(equal.items())))

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        inner = ", ".join(f"{m.label}{m.op}{quote(m.value)}" for m in self.matchers)
        return f"{self.name}{{{inner}}}"


def quote(value: str) -> str:
    """Return a double-quoted label value, escaped as the parser (and PromQL) reads it."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=4096)
def parse_selector(text: str) -> Selector:
    """Parse ``name{label op "value", ...}``; raise SelectorError naming what is wrong."""
    text = text.strip()
    brace = text.find("{")
    name = text if brace < 0 else text[:brace].strip()
    if not METRIC_NAME.fullmatch(name):
        raise SelectorError(f"selector {text!r}: metric name {name!r} must match {METRIC_NAME.pattern}")
    if brace < 0:
        return Selector(name)
    if not text.endswith("}"):
        raise SelectorError(f"selector {text!r}: missing closing '}}'")
    body = text[brace + 1 : -1]
    matchers = []
    pos = 0
    while pos < len(body) and body[pos:].strip():
        m = _MATCHER.match(body, pos)
        if not m:
            raise SelectorError(
                f'selector {text!r}: expected label{{{"|".join(OPERATORS)}}}"value" at {body[pos:]!r}'
            )
        label, op, value = m.group(1), m.group(2), m.group(3).replace('\\"', '"').replace("\\\\", "\\")
        if not LABEL_NAME.fullmatch(label):
            raise SelectorError(f"selector {text!r}: label name {label!r} must match {LABEL_NAME.pattern}")
        matchers.append(Matcher(label, op, value))
        pos = m.end()
    return Selector(name, tuple(matchers))
