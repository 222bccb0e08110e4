"""A dashboard being edited in the browser: a plain dict kept by the page, changed one step at a time.

The draft may hold mistakes while someone types; ``mistakes`` says which field holds each, and only a
draft without any is saved (by the one schema every dashboard passes).
"""

from __future__ import annotations

import copy

from pydantic import ValidationError

from layouts.schema import CHART_TYPES, GRID_COLUMNS, Dashboard, id_for

QUERY_ROWS = 3  # queries the panel form shows
FIELDS = (
    "title",
    "type",
    "description",
    "unit",
    "min",
    "max",
    "warn",
    "crit",
    "direction",
    "stack",
    "several",
    "text",
)


def _next_place(panels: list[dict], w: int = 6, h: int = 3) -> dict:
    bottom = max((p.get("grid", {}).get("y", 0) + p.get("grid", {}).get("h", 3) for p in panels), default=0)
    return {"x": 0, "y": bottom, "w": w, "h": h}


def new_panel(draft: dict, expr: str = "", chart: str = "line") -> str:
    """Add a panel (with a query, if given) below the others; return its id."""
    panels = draft["dashboard"].setdefault("panels", [])
    title = "New panel"
    pid = id_for(title, {p.get("id") for p in panels})
    draft.setdefault("unsaved", []).append(pid)
    panels.append(
        {
            "id": pid,
            "title": title,
            "type": chart,
            "queries": [{"expr": expr}] if expr else [{"expr": ""}],
            "grid": _next_place(panels),
        }
    )
    draft["selected"] = pid
    return pid


def name_new_panel(draft: dict, panel: dict) -> None:
    """A panel added since the last save takes its id from its title (the id names it in links)."""
    unsaved = draft.get("unsaved") or []
    if panel.get("id") not in unsaved or not isinstance(panel.get("title"), str):
        return
    others = {p.get("id") for p in draft["dashboard"].get("panels", []) if p is not panel}
    pid = id_for(panel["title"], others)
    if pid != panel["id"]:
        unsaved[unsaved.index(panel["id"])] = pid
        if draft.get("selected") == panel["id"]:
            draft["selected"] = pid
        panel["id"] = pid


def duplicate_panel(draft: dict) -> str | None:
    """Copy the selected panel below the others; return the copy's id."""
    panel = selected(draft)
    if panel is None:
        return None
    panels = draft["dashboard"]["panels"]
    twin = copy.deepcopy(panel)
    twin["title"] = f"{panel.get('title', 'Panel')} (copy)"
    twin["id"] = id_for(twin["title"], {p.get("id") for p in panels})
    g = panel.get("grid", {})
    twin["grid"] = _next_place(panels, g.get("w", 6), g.get("h", 3))
    draft.setdefault("unsaved", []).append(twin["id"])
    panels.append(twin)
    draft["selected"] = twin["id"]
    return twin["id"]


def remove_panel(draft: dict) -> None:
    """Remove the selected panel; the one before it becomes selected."""
    panels = draft["dashboard"].get("panels", [])
    index = next((i for i, p in enumerate(panels) if p.get("id") == draft.get("selected")), None)
    if index is None:
        return
    panels.pop(index)
    draft["selected"] = panels[max(0, index - 1)]["id"] if panels else None


def selected(draft: dict) -> dict | None:
    """The panel the form shows."""
    return next(
        (p for p in draft["dashboard"].get("panels", []) if p.get("id") == draft.get("selected")), None
    )


def place(draft: dict, panel_id: str, x: int, y: int, w: int, h: int) -> bool:
    """Move or resize a panel on the 12-column grid (kept inside it); False for an unknown panel."""
    panel = next((p for p in draft["dashboard"].get("panels", []) if p.get("id") == panel_id), None)
    if panel is None:
        return False
    w = max(1, min(GRID_COLUMNS, int(w)))
    h = max(1, min(12, int(h)))
    x = max(0, min(GRID_COLUMNS - w, int(x)))
    panel["grid"] = {"x": x, "y": max(0, int(y)), "w": w, "h": h}
    draft["selected"] = panel_id
    return True


def _number(value):
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # kept as typed: the schema says what is wrong with it


def form_values(panel: dict | None) -> dict:
    """The panel form's fields for a panel (empty for none)."""
    panel = panel or {}
    thresholds = panel.get("thresholds") or {}
    return {
        "title": panel.get("title", ""),
        "type": panel.get("type", "line"),
        "description": panel.get("description", ""),
        "unit": panel.get("unit") or "",
        "min": panel.get("min"),
        "max": panel.get("max"),
        "warn": thresholds.get("warn"),
        "crit": thresholds.get("crit"),
        "direction": thresholds.get("direction", "above"),
        "stack": ["stack"] if panel.get("stack") else [],
        "several": panel.get("several", "each"),
        "text": panel.get("text") or "",
    }


def query_values(panel: dict | None) -> tuple[list[str], list[str]]:
    """The query rows of the panel form: each query's text and legend template."""
    queries = (panel or {}).get("queries") or []
    exprs = [q.get("expr", "") for q in queries][:QUERY_ROWS]
    legends = [q.get("legend") or "" for q in queries][:QUERY_ROWS]
    pad = QUERY_ROWS - len(exprs)
    return exprs + [""] * pad, legends + [""] * pad


def apply_form(panel: dict, fields: dict, exprs: list, legends: list) -> None:
    """Put what the form holds into the panel (empty fields left out, so defaults apply)."""
    for key in ("title", "description", "unit", "text"):
        value = fields.get(key)
        if isinstance(value, str) and (value.strip() or key == "title"):
            panel[key] = value
        else:
            panel.pop(key, None)
    if fields.get("type") in CHART_TYPES:
        panel["type"] = fields["type"]
    for key in ("min", "max"):
        value = _number(fields.get(key))
        if value is None:
            panel.pop(key, None)
        else:
            panel[key] = value
    warn, crit = _number(fields.get("warn")), _number(fields.get("crit"))
    if warn is None and crit is None:
        panel.pop("thresholds", None)
    else:
        panel["thresholds"] = {"warn": warn, "crit": crit, "direction": fields.get("direction") or "above"}
    stack = fields.get("stack")
    if stack:
        panel["stack"] = True
    else:
        panel.pop("stack", None)
    if fields.get("several") in ("each", "worst") and fields["several"] != "each":
        panel["several"] = fields["several"]
    else:
        panel.pop("several", None)
    old = panel.get("queries") or []
    queries = []
    for i, expr in enumerate(exprs[:QUERY_ROWS]):
        expr = expr if isinstance(expr, str) else ""
        if not expr.strip():
            continue
        query = dict(old[i]) if i < len(old) and isinstance(old[i], dict) else {}
        query["expr"] = expr.strip()
        legend = legends[i] if i < len(legends) and isinstance(legends[i], str) else ""
        if legend.strip():
            query["legend"] = legend
        else:
            query.pop("legend", None)
        queries.append(query)
    queries += [q for q in old[QUERY_ROWS:] if isinstance(q, dict)]  # rows the form does not show stay
    panel["queries"] = queries


def mistakes(draft: dict) -> tuple[dict[str, str], list[str]]:
    """What is wrong with a draft: by field of the selected panel, and the rest as sentences."""
    data = draft["dashboard"]
    if not data.get("id"):
        data = {**data, "id": "new"}  # a new dashboard's id is made from its title when it is saved
    try:
        Dashboard.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return {}, []
    panels = draft["dashboard"].get("panels") or []
    index = next((i for i, p in enumerate(panels) if p.get("id") == draft.get("selected")), None)
    by_field: dict[str, str] = {}
    others: list[str] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] == "panels" and loc[1] == index:
            rest = [str(part) for part in loc[2:]]
            if rest[:1] == ["queries"] and len(rest) >= 2:
                field = f"{rest[2] if len(rest) > 2 and rest[2] == 'legend' else 'expr'}-{rest[1]}"
            elif rest[:1] == ["thresholds"]:
                field = rest[1] if len(rest) > 1 and rest[1] in ("warn", "crit") else "warn"
            elif rest and rest[0] in FIELDS:
                field = rest[0]
            else:
                field = "panel"
            by_field.setdefault(field, message)
        elif len(loc) >= 2 and loc[0] == "panels" and isinstance(loc[1], int) and loc[1] < len(panels):
            title = panels[loc[1]].get("title") or panels[loc[1]].get("id")
            others.append(f"panel {title!r} {'.'.join(str(p) for p in loc[2:])}: {message}")
        else:
            where = ".".join(str(p) for p in loc) or "dashboard"
            others.append(f"{where}: {message}")
    return by_field, others
