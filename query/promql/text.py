"""What a PromQL text may be before it reaches the parser: its length, its nesting and its operators.

The parser's native library needs memory that grows with the square of an expression's depth (1,000
nested parentheses take 80 MB, 10,000 crash the process), so a text deeper or longer than any real
query is refused with the limit it broke, before it is parsed.
"""

from __future__ import annotations

import re

MAX_LENGTH = 16_384  # characters of one query
MAX_DEPTH = 64  # nested (), [] and {}
MAX_OPERATORS = 256  # operators outside label matchers: each one deepens the expression tree

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = set(_OPEN.values())
_SYMBOLS = set("+-*/%^<>=!")
_WORDS = {"and", "or", "unless", "atan2"}
_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def duration(text: str) -> float | None:
    """Return the seconds of a Prometheus duration such as ``1h30m`` or ``500ms`` (None if it is not one)."""
    found = _DURATION.fullmatch(text) if text and len(text) <= 64 else None
    if found is None:
        return None
    return sum(int(n) * unit for n, unit in zip(found.groups(), _UNITS) if n)


def check(query: str) -> str | None:
    """Return why a query text is refused before parsing, or None when it may be parsed."""
    if len(query) > MAX_LENGTH:
        return f"the query has {len(query):,} characters; at most {MAX_LENGTH:,} are accepted"
    depth = deepest = operators = 0
    in_braces = 0
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in "\"'`":
            i = _string_end(query, i)
            continue
        if c == "#":  # a comment runs to the end of the line
            end = query.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
            in_braces += c == "{"
        elif c in _CLOSE:
            depth = max(depth - 1, 0)
            in_braces = max(in_braces - (c == "}"), 0)
        elif c in _SYMBOLS and not in_braces:
            operators += 1
            while i + 1 < n and query[i + 1] in _SYMBOLS:  # >=, ==, !=, <= count once
                i += 1
        elif c.isalpha() and not in_braces:
            j = i
            while j < n and (query[j].isalnum() or query[j] in "_:"):
                j += 1
            operators += query[i:j].lower() in _WORDS
            i = j
            continue
        i += 1
    if deepest > MAX_DEPTH:
        return f"the query nests {deepest} levels of brackets; at most {MAX_DEPTH} are accepted"
    if operators > MAX_OPERATORS:
        return f"the query has {operators} operators; at most {MAX_OPERATORS} are accepted"
    return None


def _string_end(query: str, start: int) -> int:
    """Return the index after the string literal opening at ``start`` (or the end of the text)."""
    quote = query[start]
    i = start + 1
    while i < len(query):
        if query[i] == "\\" and quote != "`":
            i += 2
            continue
        if query[i] == quote:
            return i + 1
        i += 1
    return len(query)
