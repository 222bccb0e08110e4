"""Read a Grafana dashboard (JSON as grafana.com and Grafana's export give it) as a Pulseboard dashboard.

Every Grafana panel becomes a Pulseboard panel, or a text panel that says why it could not; the report
lists each panel with how it was mapped. Grafana's 24-column grid of 30 px rows becomes the 12-column
grid of 78 px rows; collapsed rows are opened, their panels placed where the row stands.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from layouts import grafana_variables
from layouts.grafana_variables import reason
from layouts.schema import GRID_COLUMNS, MAX_PANELS, Panel, id_for

GRAFANA_COLUMNS = 24
GRAFANA_ROW_PX = 38  # a Grafana grid unit: 30 px and an 8 px gap
ROW_PX = 78  # a row of Pulseboard's grid (assets/pulseboard.css --row)

CHART_TYPES = {
    "timeseries": "line",
    "graph": "line",
    "stat": "stat",
    "singlestat": "stat",
    "gauge": "gauge",
    "bargauge": "bar",
    "piechart": "pie",
    "grafana-piechart-panel": "pie",
    "table": "table",
    "table-old": "table",
    "heatmap": "heatmap",
    "state-timeline": "heatmap",
    "status-history": "heatmap",
    "barchart": "bar",
}
# Grafana's unit ids and Pulseboard's; a unit missing here is shown as a plain number and reported.
UNITS = {
    "percent": "percent",
    "percentunit": "ratio",
    "bytes": "bytes",
    "decbytes": "bytes",
    "Bps": "bytes_per_second",
    "binBps": "bytes_per_second",
    "bps": "bits_per_second",
    "binbps": "bits_per_second",
    "bits": "bits",
    "decbits": "bits",
    "s": "seconds",
    "dtdurations": "seconds",
    "ms": "milliseconds",
    "µs": "microseconds",
    "ns": "nanoseconds",
    "ops": "per_second",
    "reqps": "per_second",
    "rps": "per_second",
    "wps": "per_second",
    "iops": "per_second",
    "pps": "per_second",
    "eps": "per_second",
    "cps": "per_second",
    "short": "none",
    "none": "none",
    "": "none",
    "hertz": "hertz",
    "celsius": "celsius",
    "fahrenheit": "fahrenheit",
    "kelvin": "kelvin",
    "watt": "watts",
    "volt": "volts",
    "amp": "amperes",
    "joule": "joules",
    "currencyUSD": "currency",
    "rotrpm": "rpm",
    "bool": "none",
    "bool_yes_no": "none",
    "bool_on_off": "none",
}
_LEGEND_LABEL = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
_RED = re.compile(
    r"red|#(?:d44a3a|e02f44|f2495c|c4162a|bf1b00)|rgba?\(\s*(?:2[0-5]\d|1[5-9]\d)\s*,\s*\d{1,2}\s*,", re.I
)


@dataclass
class Imported:
    """A Grafana dashboard read as Pulseboard's: the definition (the schema's dict) and the report."""

    dashboard: dict
    panels: list[dict] = field(default_factory=list)  # per Grafana panel: title, type, mapped to, note
    variables: list[dict] = field(default_factory=list)


class GrafanaError(ValueError):
    """A body that is not a Grafana dashboard."""


def read(grafana: object, dashboard_id: str | None = None, access: str = "operations") -> Imported:
    """Return a Grafana dashboard as Pulseboard's; raise GrafanaError when it is not one."""
    if isinstance(grafana, dict) and "panels" not in grafana and isinstance(grafana.get("dashboard"), dict):
        grafana = grafana["dashboard"]  # Grafana's API wraps it: {"dashboard": ..., "meta": ...}
    if not isinstance(grafana, dict):
        raise GrafanaError("a Grafana dashboard is a JSON object with panels")
    tops = grafana.get("panels")
    if tops is None and isinstance(grafana.get("rows"), list):
        tops = _from_rows(grafana["rows"])  # before Grafana 5: rows holding panels
    if not isinstance(tops, list):
        raise GrafanaError("panels: a Grafana dashboard has a list of panels")
    title = str(grafana.get("title") or "Imported dashboard").strip() or "Imported dashboard"
    out = Imported({})
    variables, renamed, out.variables = grafana_variables.variables(grafana.get("templating"))
    placed = _placed(tops)
    panels, used = [], set()
    for raw, (x, y, w, h) in placed:
        if len(panels) >= MAX_PANELS:
            out.panels.append(_entry(raw, None, f"left out: a dashboard holds at most {MAX_PANELS} panels"))
            continue
        panel, note = _panel(raw, renamed)
        pid = id_for(str(raw.get("title") or ""), used)
        used.add(pid)
        grid = {"x": x, "y": y, "w": w, "h": h}
        panel = {**panel, "id": pid, "grid": grid}
        try:
            Panel.model_validate(panel)
        except ValidationError as exc:
            why = "; ".join(reason(e) for e in exc.errors())
            panel = _text_panel(panel, f"Not drawn: {why}")
            note = f"shown as text: {why}"
        panels.append(panel)
        out.panels.append(_entry(raw, panel, note, pid))
    if not panels:
        raise GrafanaError("panels: the dashboard has no panels to import")
    definition = {
        "id": dashboard_id or id_for(title, default="imported"),
        "title": title[:200],
        "access": access,
        "description": str(grafana.get("description") or f"Imported from Grafana ({len(panels)} panels)"),
        "variables": variables,
        "panels": panels,
    }
    refresh = _refresh(grafana.get("refresh"))
    if refresh is not None:
        definition["refresh"] = refresh
    out.dashboard = definition
    return out


def _entry(raw: dict, panel: dict | None, note: str, pid: str | None = None) -> dict:
    return {
        "title": str(raw.get("title") or ""),
        "grafana_type": str(raw.get("type") or ""),
        "id": pid,
        "type": None if panel is None else panel["type"],
        "queries": 0 if panel is None else len(panel.get("queries", [])),
        "mapped": panel is not None and bool(panel.get("queries")),
        "note": note,
    }


def _from_rows(rows: list) -> list:
    panels, y = [], 0
    for row in rows:
        if not isinstance(row, dict):
            continue
        x, height = 0, max(1, round(_number(row.get("height"), 250) / GRAFANA_ROW_PX))
        for p in row.get("panels") or []:
            if not isinstance(p, dict):
                continue
            w = max(1, min(GRAFANA_COLUMNS, round(_number(p.get("span"), 12) * 2)))
            if x + w > GRAFANA_COLUMNS:
                x, y = 0, y + height
            panels.append({**p, "gridPos": {"x": x, "y": y, "w": w, "h": height}})
            x += w
        y += height
    return panels


def _number(value, default: float) -> float:
    if isinstance(value, str):
        value = value.removesuffix("px")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _pos(raw: dict) -> tuple[float, float, float, float]:
    g = raw.get("gridPos") if isinstance(raw.get("gridPos"), dict) else {}
    return (_number(g.get("x"), 0), _number(g.get("y"), 0), _number(g.get("w"), 12), _number(g.get("h"), 8))


def _placed(tops: list) -> list[tuple[dict, tuple[int, int, int, int]]]:
    """Each panel (rows opened) with its place on Pulseboard's grid, top to bottom."""
    flat: list[tuple[dict, float, float, float, float]] = []
    shift = 0.0
    ordered = sorted((p for p in tops if isinstance(p, dict)), key=lambda p: (_pos(p)[1], _pos(p)[0]))
    for raw in ordered:
        x, y, w, h = _pos(raw)
        if raw.get("type") == "row":
            children = [c for c in raw.get("panels") or [] if isinstance(c, dict)]
            if children:  # a collapsed row: its panels go where it stands, the rest moves down
                top = min(_pos(c)[1] for c in children)
                bottom = max(_pos(c)[1] + _pos(c)[3] for c in children)
                for c in sorted(children, key=lambda c: (_pos(c)[1], _pos(c)[0])):
                    cx, cy, cw, ch = _pos(c)
                    flat.append((c, cx, y + shift + 1 + (cy - top), cw, ch))
                shift += bottom - top
            continue
        flat.append((raw, x, y + shift, w, h))
    k = GRAFANA_ROW_PX / ROW_PX
    out = []
    floor = [0] * GRID_COLUMNS  # the first free row of each column: a panel never covers another
    for raw, x, y, w, h in sorted(flat, key=lambda item: (item[2], item[1])):
        left = min(GRID_COLUMNS - 1, math.floor(x / 2 + 0.5))
        right = min(GRID_COLUMNS, max(left + 1, math.floor((x + w) / 2 + 0.5)))
        top = math.floor(y * k + 0.5)
        height = min(12, max(1, math.floor((y + h) * k + 0.5) - top))
        top = max(top, *floor[left:right])
        floor[left:right] = [top + height] * (right - left)
        out.append((raw, (left, top, right - left, height)))
    return out


def _text_panel(panel: dict, text: str) -> dict:
    kept = {k: panel[k] for k in ("id", "title", "grid", "description") if k in panel}
    return {**kept, "type": "stat", "queries": [], "text": text}


def _legend(template: object) -> str | None:
    if not isinstance(template, str) or not template.strip() or template.strip() == "__auto":
        return None
    parts, last = [], 0
    for m in _LEGEND_LABEL.finditer(template):
        parts.append(template[last : m.start()].replace("{", "{{").replace("}", "}}"))
        parts.append("{" + m.group(1) + "}")
        last = m.end()
    parts.append(template[last:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


def _bound(defaults: dict, raw: dict, key: str):
    value = defaults.get(key)
    if value is None:
        axes = raw.get("yaxes")
        if isinstance(axes, list) and axes and isinstance(axes[0], dict):
            value = axes[0].get(key)
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _thresholds(defaults: dict, raw: dict) -> dict | None:
    steps = (
        (defaults.get("thresholds") or {}).get("steps")
        if isinstance(defaults.get("thresholds"), dict)
        else None
    )
    if isinstance(steps, list) and steps:
        colours = [str(s.get("color", "")) for s in steps if isinstance(s, dict)]
        values = [
            float(s["value"])
            for s in steps
            if isinstance(s, dict) and isinstance(s.get("value"), (int, float))
        ]
    elif isinstance(raw.get("thresholds"), str) and raw["thresholds"].strip():  # singlestat: "80,90"
        try:
            values = [float(v) for v in raw["thresholds"].split(",") if v.strip()]
        except ValueError:
            return None
        colours = [str(c) for c in raw.get("colors") or []]
    else:
        return None
    if not values:
        return None
    warn, crit = (values[0], values[1]) if len(values) > 1 else (values[0], values[0])
    below = bool(colours) and bool(_RED.search(colours[0])) and not _RED.search(colours[-1])
    if below:
        warn, crit = (values[-1], values[0]) if len(values) > 1 else (values[0], values[0])
        if crit > warn:
            warn, crit = crit, warn
        return {"warn": warn, "crit": crit, "direction": "below"}
    return {"warn": warn, "crit": max(crit, warn), "direction": "above"}


def _panel(raw: dict, renamed: dict[str, str]) -> tuple[dict, str]:
    """A Grafana panel as a Pulseboard panel dict (not yet validated), and how it was mapped."""
    gtype = str(raw.get("type") or "")
    title = str(raw.get("title") or "").strip() or "Untitled"
    base = {"title": title[:200]}
    if raw.get("description"):
        base["description"] = str(raw["description"])[:2000]
    if gtype == "text":
        options = raw.get("options") if isinstance(raw.get("options"), dict) else {}
        content = str(options.get("content") or raw.get("content") or "").strip()
        return {**base, "type": "stat", "queries": [], "text": content or title}, "text panel: its text shown"
    kind = CHART_TYPES.get(gtype)
    if kind is None:
        what = f"Grafana's {gtype or 'unknown'} panel has no Pulseboard chart"
        return {**base, "type": "stat", "queries": [], "text": what}, f"shown as text: {what}"
    targets = [t for t in raw.get("targets") or [] if isinstance(t, dict) and not t.get("hide")]
    queries, skipped = [], []
    for t in targets:
        expr = t.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            source = t.get("datasource") or raw.get("datasource")
            skipped.append(f"{t.get('refId', '?')} is not a PromQL query ({_source_name(source)})")
            continue
        expr = _renamed(expr.strip(), renamed)
        query = {"expr": expr}
        legend = _legend(t.get("legendFormat"))
        if legend:
            query["legend"] = legend
        queries.append(query)
    if not queries:
        what = "; ".join(skipped) or "the panel has no queries"
        return {**base, "type": "stat", "queries": [], "text": f"Not drawn: {what}"}, f"shown as text: {what}"
    field_config = raw.get("fieldConfig") if isinstance(raw.get("fieldConfig"), dict) else {}
    defaults = field_config.get("defaults") if isinstance(field_config.get("defaults"), dict) else {}
    custom = defaults.get("custom") if isinstance(defaults.get("custom"), dict) else {}
    panel = {**base, "type": kind, "queries": queries}
    notes = []
    if gtype in ("timeseries", "graph"):
        fill = custom.get("fillOpacity") if gtype == "timeseries" else raw.get("fill")
        stacking = (
            (custom.get("stacking") or {}).get("mode") if isinstance(custom.get("stacking"), dict) else None
        )
        if gtype == "graph" and raw.get("stack"):
            stacking = "normal"
        if stacking and stacking != "none":
            panel["stack"] = True
            if stacking == "percent":
                notes.append("stacked as values, not percentages")
        if (
            isinstance(fill, (int, float))
            and fill >= (10 if gtype == "timeseries" else 1)
            and not panel.get("stack")
        ):
            panel["type"] = "area"
        elif panel.get("stack") and isinstance(fill, (int, float)) and fill > 0:
            panel["type"] = "area"
    unit = defaults.get("unit")
    if unit is None and gtype == "graph":
        axes = raw.get("yaxes")
        unit = (
            axes[0].get("format") if isinstance(axes, list) and axes and isinstance(axes[0], dict) else None
        )
    if unit is None and gtype == "singlestat":
        unit = raw.get("format")
    if isinstance(unit, str):
        if unit in UNITS:
            panel["unit"] = UNITS[unit]
        else:
            panel["unit"] = "none"
            notes.append(f"unit {unit!r} shown as a plain number")
    for key in ("min", "max"):
        bound = _bound(defaults, raw, key)
        if bound is not None:
            panel[key] = bound
    if "min" in panel and "max" in panel and panel["min"] >= panel["max"]:
        panel.pop("min")
    if kind in ("stat", "gauge", "bar") or (custom.get("thresholdsStyle") or {}).get("mode") not in (
        None,
        "off",
    ):
        thresholds = _thresholds(defaults, raw)
        if thresholds:
            panel["thresholds"] = thresholds
    if skipped:
        notes.append("left out: " + "; ".join(skipped))
    notes += _not_carried(raw, field_config)
    if gtype != kind and gtype not in ("timeseries", "graph", "singlestat", "piechart", "table-old"):
        notes.append(f"{gtype} drawn as {panel['type']}")
    note = f"{len(queries)} quer{'y' if len(queries) == 1 else 'ies'} as {panel['type']}"
    return panel, "; ".join([note, *notes])


def _not_carried(raw: dict, field_config: dict) -> list[str]:
    """What of a panel has no place in Pulseboard's, said in its report line."""
    out = []
    overrides = field_config.get("overrides")
    if isinstance(overrides, list) and overrides:
        out.append(f"{len(overrides)} per-series override{'s' if len(overrides) > 1 else ''} not carried")
    mappings = (
        (field_config.get("defaults") or {}).get("mappings")
        if isinstance(field_config.get("defaults"), dict)
        else None
    )
    if isinstance(mappings, list) and mappings:
        out.append("value mappings not carried (numbers shown as they are)")
    if isinstance(raw.get("transformations"), list) and raw["transformations"]:
        out.append("transformations not carried")
    if isinstance(raw.get("repeat"), str) and raw["repeat"]:
        out.append(f"repeat by ${raw['repeat']} not carried: one panel draws every value")
    return out


def _source_name(source) -> str:
    if isinstance(source, dict):
        source = source.get("type") or source.get("uid")
    return f"data source {source}" if source else "no query text"


def _renamed(expr: str, renamed: dict[str, str]) -> str:
    for old, new in renamed.items():
        expr = re.sub(rf"\$\{{{old}(:\w+)?\}}|\[\[{old}(:\w+)?\]\]|\${old}\b", "$" + new, expr)
    return expr


def _refresh(value) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    m = re.fullmatch(r"(\d+)(s|m|h)", value)
    if not m:
        return None
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    return min((0, 1, 5, 30), key=lambda c: abs(c - seconds)) if seconds <= 60 else 30
