"""Grafana's templating variables as Pulseboard's dashboard variables.

``label_values(...)`` and ``query_result(...)`` list a label's values (with Grafana's regex), ``custom``,
``constant``, ``textbox`` and ``interval`` keep their values, a data-source variable is Pulseboard's own
source; any other kind is left out, and the report says so.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from layouts.schema import Variable
from query.promql.variables import references

_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*?)\s*,\s*)?([a-zA-Z_]\w*)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)
_CAPTURED_LABEL = re.compile(r'([a-zA-Z_]\w*)="\(')
_MATCHER_NAMING_VARIABLE = re.compile(r'\s*[a-zA-Z_]\w*\s*(?:=~|!~|!=|=)\s*"[^"]*(?:\$|\[\[)[^"]*"\s*,?')


def reason(error: dict) -> str:
    """A schema error as one line: where, and what is wrong."""
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("queries",))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _current(variable: dict) -> str | None:
    current = variable.get("current")
    value = current.get("value") if isinstance(current, dict) else None
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if (
        not isinstance(value, str)
        or value in ("", "$__all", "$__auto_interval")
        or value.startswith("$__auto")
    ):
        return None
    return value


def _choices(variable: dict) -> list[str]:
    options = [o.get("value") for o in variable.get("options") or [] if isinstance(o, dict)]
    options = [o for o in options if isinstance(o, str) and o and not o.startswith("$__")]
    if options:
        return list(dict.fromkeys(options))
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    if not isinstance(query, str):
        return []
    values = []
    for part in query.split(","):
        part = part.strip()
        if " : " in part:
            part = part.split(" : ", 1)[1].strip()
        if part:
            values.append(part)
    return list(dict.fromkeys(values))


def variables(templating) -> tuple[list[dict], dict[str, str], list[dict]]:
    """Grafana's templating variables as Pulseboard's, the names changed on the way, and the report."""
    found = templating.get("list") if isinstance(templating, dict) else None
    variables, renamed, names, report = [], {}, set(), []
    for v in found or []:
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            continue
        name, kind = v["name"], v.get("type")
        safe = re.sub(r"\W", "_", name)
        if not re.match(r"[a-zA-Z_]", safe):
            safe = "v_" + safe
        if safe.startswith("__"):
            safe = "v" + safe
        if safe != name:
            renamed[name] = safe
        title = str(v.get("label") or name)
        made, note, by_label = None, "", False
        if kind == "query":
            query = v.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            query = query if isinstance(query, str) else ""
            lv, qr = _LABEL_VALUES.match(query), _QUERY_RESULT.match(query)
            if lv:
                by_label = True  # Grafana's regex then picks among (or cuts) the label's values
                selector = _without_variables(lv.group(1)) if lv.group(1) else None
                made = {"name": safe, "title": title, "label": lv.group(2), "narrow": False}
                if selector:
                    made["values_from"] = selector
                note = f"values of the label {lv.group(2)}" + (f" of {selector}" if selector else "")
            elif qr:
                captured = _CAPTURED_LABEL.search(str(v.get("regex") or ""))
                inner = _without_variables(qr.group(1).strip())
                if captured:
                    made = {"name": safe, "title": title, "label": captured.group(1), "narrow": False}
                    if re.fullmatch(r"[a-zA-Z_:][\w:]*(\{[^{}]*\})?", inner):
                        made["values_from"] = inner
                    note = f"values of the label {captured.group(1)} (from query_result)"
            if made is None:
                values = _choices(v)
                if values:
                    made = {"name": safe, "title": title, "kind": "custom", "values": values}
                    note = f"the values Grafana had saved ({query or 'no query'} cannot be listed)"
                else:
                    note = f"left out: {query or 'its query'} cannot be listed"
        elif kind in ("custom", "interval", "constant", "textbox"):
            values = _choices(v)
            if kind == "interval" and v.get("auto"):
                values = ["$__interval", *values]
            if not values and kind in ("constant", "textbox"):
                values = [str(v.get("query") or "")] if v.get("query") else []
            if values:
                made = {
                    "name": safe,
                    "title": title,
                    "kind": "interval" if kind == "interval" else "custom",
                    "values": values,
                }
                note = f"{kind}: {', '.join(values[:6])}" + ("…" if len(values) > 6 else "")
            else:
                note = f"left out: the {kind} variable lists no values"
        elif kind == "datasource":
            note = "data source: Pulseboard's own source"
            renamed[name] = "__pulseboard_source"
        else:
            note = f"left out: Grafana's {kind} variables have no Pulseboard equivalent"
        regex = _regex(v.get("regex"))
        if made is not None and regex and by_label:
            made["regex"] = regex
            note += f", matching {regex}"
        if made is not None:
            default = _current(v)
            if default and made.get("kind") in ("custom", "interval") and default in made["values"]:
                made["default"] = default
            try:
                Variable.model_validate(made)
            except ValidationError as exc:
                note = "left out: " + "; ".join(reason(e) for e in exc.errors())
                made = None
        if made is not None and made["name"] not in names:
            names.add(made["name"])
            variables.append(made)
        report.append({"name": name, "type": kind, "mapped": made is not None, "note": note})
    renamed = {k: v for k, v in renamed.items() if v != "__pulseboard_source"}
    return variables, renamed, report


def _regex(value) -> str | None:
    """Grafana's /pattern/flags as a pattern (flags other than i left out)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    m = re.fullmatch(r"/(.*)/([a-z]*)", text, re.S)
    if m:
        text = ("(?i)" if "i" in m.group(2) else "") + m.group(1)
    try:
        re.compile(text)
    except re.error:
        return None
    return text


def _without_variables(selector: str | None) -> str | None:
    """A selector with the matchers that name variables taken out (its values list every choice)."""
    if not selector:
        return None
    text = _MATCHER_NAMING_VARIABLE.sub("", selector)
    text = re.sub(r",\s*}", "}", text).replace("{}", "")
    return None if references(text) else text.strip() or None
