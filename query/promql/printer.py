"""Write a parsed PromQL expression back as text, with label conditions added to every selector.

Dashboard variables narrow every selector of a panel's query this way (``instance="a"`` replacing any
condition on ``instance``), on the embedded store and on a Prometheus server alike.
"""

from __future__ import annotations

import math

from query.promql.engine import parse

_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _duration(delta) -> str:
    ms = round(delta.total_seconds() * 1000)
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 1000}s" if ms % 1000 == 0 else f"{sign}{ms}ms"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _modifiers(node) -> str:
    out = ""
    if node.offset is not None and node.offset.total_seconds() != 0:
        out += f" offset {_duration(node.offset)}"
    if node.at is not None:
        kind = str(node.at.type).rsplit(".", 1)[-1]
        out += {"Start": " @ start()", "End": " @ end()"}.get(kind) or f" @ {node.at.at.timestamp():.3f}"
    return out


def _selector(node, extra: dict[str, str]) -> str:
    groups = [list(node.matchers.matchers)] + [list(g) for g in node.matchers.or_matchers]
    texts = []
    for group in groups:
        kept = [
            f"{m.name}{_OPS[str(m.op).rsplit('.', 1)[-1]]}{_quote(m.value)}"
            for m in group
            if m.name not in extra
        ]
        kept += [f"{k}={_quote(v)}" for k, v in sorted(extra.items())]
        texts.append(", ".join(kept))
    inner = " or ".join(t for t in texts if t)
    name = node.name or ""
    return f"{name}{{{inner}}}" if inner or not name else name


def write(node, extra: dict[str, str] | None = None) -> str:
    """Return PromQL text for a parsed expression, ``extra`` label="value" conditions in each selector."""
    extra = extra or {}
    kind = type(node).__name__
    if kind == "NumberLiteral":
        return _number(node.val)
    if kind == "StringLiteral":
        return _quote(node.val)
    if kind == "ParenExpr":
        return f"({write(node.expr, extra)})"
    if kind == "UnaryExpr":
        return f"-{_operand(node.expr, extra)}"
    if kind == "VectorSelector":
        return _selector(node, extra) + _modifiers(node)
    if kind == "MatrixSelector":
        selector = node.vector_selector
        return f"{_selector(selector, extra)}[{_duration(node.range)}]{_modifiers(selector)}"
    if kind == "SubqueryExpr":
        step = _duration(node.step) if node.step is not None else ""
        return f"{_operand(node.expr, extra)}[{_duration(node.range)}:{step}]{_modifiers(node)}"
    if kind == "Call":
        args = ", ".join(write(a, extra) for a in node.args)
        return f"{node.func.name}({args})"
    if kind == "AggregateExpr":
        grouping = ""
        if node.modifier is not None:
            how = "without" if str(node.modifier.type).endswith("Without") else "by"
            grouping = f" {how} ({', '.join(node.modifier.labels)})"
        param = f"{write(node.param, extra)}, " if node.param is not None else ""
        return f"{node.op}{grouping} ({param}{write(node.expr, extra)})"
    if kind == "BinaryExpr":
        lhs, rhs = _operand(node.lhs, extra), _operand(node.rhs, extra)
        return f"{lhs} {node.op}{_binary_modifier(node.modifier)} {rhs}"
    raise ValueError(f"cannot write {kind} expressions")


def _operand(node, extra: dict[str, str]) -> str:
    """An operand, bracketed when it is itself an operation (so precedence never changes)."""
    text = write(node, extra)
    return f"({text})" if type(node).__name__ in ("BinaryExpr", "UnaryExpr") else text


def _binary_modifier(modifier) -> str:
    if modifier is None:
        return ""
    out = " bool" if modifier.return_bool else ""
    if modifier.matching is not None:
        how = "on" if str(modifier.matching.type).endswith("Include") else "ignoring"
        out += f" {how} ({', '.join(modifier.matching.labels)})"
    card = str(modifier.card).rsplit(".", 1)[-1]
    if card in ("ManyToOne", "OneToMany"):
        side = "group_left" if card == "ManyToOne" else "group_right"
        out += f" {side} ({', '.join(modifier.group_labels or [])})"
    return out


# Range variables stand in for durations no query writes, so a query holding them parses and is written
# back with them in place.
_STAND_INS = {
    "$__rate_interval": "987654321ms",
    "${__rate_interval}": "987654321ms",
    "$__interval": "987654322ms",
    "${__interval}": "987654322ms",
    "$__range": "987654323ms",
    "${__range}": "987654323ms",
}


def narrow(query: str, chosen: dict[str, str]) -> str:
    """Return a query whose every selector keeps only series with the chosen label values."""
    if not chosen:
        return query
    for variable, stand_in in _STAND_INS.items():
        query = query.replace(variable, stand_in)
    text = write(parse(query), chosen)
    for variable, stand_in in _STAND_INS.items():
        if not variable.startswith("${"):
            text = text.replace(stand_in, variable)
    return text


def _selectors(query: str) -> list:
    found = []

    def walk(node) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            found.append(node)
            return
        for child in ("expr", "lhs", "rhs", "vector_selector", "param"):
            value = getattr(node, child, None)
            if value is not None and not isinstance(value, (str, float, int)):
                walk(value)
        for arg in getattr(node, "args", None) or ():
            walk(arg)

    walk(parse(query))
    return found


def _name(selector) -> str | None:
    return selector.name or next(
        (
            m.value
            for m in selector.matchers.matchers
            if m.name == "__name__" and str(m.op).endswith(".Equal")
        ),
        None,
    )


def metric_names(query: str) -> list[str]:
    """The metric names a query's selectors name, in the order they appear (each once)."""
    return list(dict.fromkeys(n for n in map(_name, _selectors(query)) if n))


def reads_unnamed(query: str) -> bool:
    """Whether a selector of the query names no metric (``{job="x"}``, ``{__name__=~"a.*"}``)."""
    return any(_name(s) is None for s in _selectors(query))
