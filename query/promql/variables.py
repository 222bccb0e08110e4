"""Dashboard variables inside PromQL text: ``$name``, ``${name}``, ``${name:format}`` and ``[[name]]``.

A dashboard's query may name a variable anywhere a Grafana query may; the value chosen on the page is
put in before the query runs. The range variables (``$__interval``, ``$__rate_interval``, ``$__range``)
are the shorthand's and are left for it.
"""

from __future__ import annotations

import re

REFERENCE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
_ALL_MATCH = ".*"


def _name(match: re.Match) -> str:
    return match.group(1) or match.group(2) or match.group(3)


def _builtin(name: str) -> bool:
    return name.startswith("__")


def references(text: str) -> list[str]:
    """The variables a query names, in order, each once (the range variables left out)."""
    return list(dict.fromkeys(n for n in map(_name, REFERENCE.finditer(text)) if not _builtin(n)))


def quote_state(text: str) -> tuple[list[str], str]:
    """The quote each character stands inside (``"``, ``'``, a backtick, or ``""``), and the one the
    text ends inside; a quote character itself counts as outside."""
    state, inside, escaped = [], "", False
    for ch in text:
        state.append(inside)
        if inside:
            if escaped:
                escaped = False
            elif ch == "\\" and inside != "`":
                escaped = True
            elif ch == inside:
                inside = ""
        elif ch in "\"'`":
            inside = ch
    return state, inside


def stand_in(text: str) -> str:
    """Return the query with each variable replaced by something of its place's kind, so it parses.

    Inside a string a variable is text; inside a range's brackets or after ``offset`` a duration;
    anywhere else a number (``topk($n, ...)``).
    """
    if "$" not in text and "[[" not in text:
        return text
    quotes = quote_state(text)[0]
    out, last = [], 0
    for match in REFERENCE.finditer(text):
        name = _name(match)
        if _builtin(name):
            continue
        start = match.start()
        before = text[:start].rstrip()
        if quotes[start]:
            value = "v"
        elif before.endswith(("[", ":")) or before.lower().endswith("offset"):
            value = "5m"
        else:
            value = "1"
        out.append(text[last:start] + value)
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def _pattern(name: str) -> str:
    return rf"(?:\$\{{{name}(?::\w+)?\}}|\[\[{name}(?::\w+)?\]\]|\${name}\b)"


def substitute(text: str, values: dict[str, str | None]) -> str:
    """Return the query with each named variable's value put in; None means every value (``.*``).

    A variable chosen as "all" inside an exact matcher (``label="$var"``) makes the matcher a regular
    expression matching anything, as Grafana's "All" does.
    """
    if not values or ("$" not in text and "[[" not in text):
        return text
    for name, value in values.items():
        if value is None and not _builtin(name):
            text = re.sub(rf"(?<![!=~])=(\s*[\"'])(?={_pattern(name)})", r"=~\1", text)
    quotes = quote_state(text)[0]
    out, last = [], 0
    for match in REFERENCE.finditer(text):
        name = _name(match)
        if _builtin(name) or name not in values:
            continue
        start, value = match.start(), values[name]
        if value is None:
            value = _ALL_MATCH
        elif quotes[start]:
            value = value.replace("\\", "\\\\").replace(quotes[start], "\\" + quotes[start])
        out.append(text[last:start] + value)
        last = match.end()
    out.append(text[last:])
    return "".join(out)
