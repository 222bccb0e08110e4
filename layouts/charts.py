"""The eight chart builders: pure functions of a frame and a panel that return a Plotly figure.

Figures are plain Plotly figure dicts (``{"data": [...], "layout": {...}}``): the browser
draws them as it would a ``go.Figure``, without the cost of validating every property on
each refresh (tests validate them through ``go.Figure``). Times are sent as epoch
milliseconds, which Plotly date axes read directly.

A frame has a UTC time index and one column per series. ``frame.attrs`` may carry
``window`` (start, end in Unix seconds) for the x-range and ``period`` (seconds)
for a stat panel's comparison with the previous period.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from layouts.schema import Panel
from layouts.units import Scale, format_value, scale_for
from tsdb.metrics import STALE_AFTER

Figure = dict
STATUS_COLORS = {"ok": "#2e9e5b", "warn": "#d99a00", "crit": "#d64545"}
# Ten hues far enough apart to tell in a legend, in light and dark; past ten, lines change their dash.
SERIES_COLORS = (
    "#3b82f6",  # blue
    "#f97316",  # orange
    "#16a34a",  # green
    "#a855f7",  # purple
    "#ef4444",  # red
    "#06b6d4",  # cyan
    "#eab308",  # yellow
    "#ec4899",  # pink
    "#a16207",  # brown
    "#94a3b8",  # slate
)
LINE_DASHES = ("solid", "dash", "dot", "dashdot")


def series_line(i: int) -> dict:
    """Return the line of the i-th series of a chart: no two of a chart's first 40 look alike."""
    n = len(SERIES_COLORS)
    return {"color": SERIES_COLORS[i % n], "dash": LINE_DASHES[(i // n) % len(LINE_DASHES)]}


THEMES = {
    "light": {
        "font": "#1f2937",
        "grid": "#e5e7eb",
        "muted": "#6b7280",
        "track": "#e5e7eb",
        "hover": "#ffffff",
    },
    "dark": {
        "font": "#e5e7eb",
        "grid": "#374151",
        "muted": "#9ca3af",
        "track": "#374151",
        "hover": "#111827",
    },
}
NO_DATA = "No data yet"
DIGITS = 4  # decimals kept after scaling: far below what a screen shows, and a smaller payload

Builder = Callable[[pd.DataFrame, Panel], Figure]


def _figure(traces: list[dict], **layout) -> Figure:
    base = {
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "showlegend": False,
        "hovermode": "x unified",
        "colorway": list(SERIES_COLORS),
    }
    base.update(layout)
    return {"data": traces, "layout": base}


def no_data(panel: Panel, message: str | None = None) -> Figure:
    """Return an empty figure that says, in words, why there is nothing to show."""
    if message is None:
        # One metric name a line: a narrow stat card would clip them side by side.
        waiting = "<br>".join(
            dict.fromkeys(plain(name) for q in panel.queries for name in q.compiled.metrics)
        )
        message = f"{NO_DATA}<br><span style='font-size:11px;opacity:0.7'>waiting for<br>{waiting}</span>"
    return _figure(
        [],
        xaxis={"visible": False},
        yaxis={"visible": False},
        meta={"empty": True, "panel": panel.id},
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
                "font": {"size": 15},
            }
        ],
    )


def _break_gaps(x: np.ndarray, y: np.ndarray, step: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Insert a missing point where samples stop for a while, so a line breaks instead of bridging."""
    if len(x) < 3:
        return x, y
    spacing = np.diff(x)
    typical = max(float(np.median(spacing)), 1000.0 * (step or 0))
    gaps = np.flatnonzero(spacing > 2.5 * typical)
    if not len(gaps):
        return x, y
    # Two missing points, just after the last sample and just before the next: a heatmap cell
    # reaches halfway to its neighbour, so one marker would let the next value fill half the pause.
    where = np.repeat(gaps + 1, 2)
    marks = np.column_stack([x[gaps] + typical, x[gaps + 1] - typical]).ravel()
    axis = 0 if y.ndim == 1 else 1
    fill = np.nan if y.ndim == 1 else np.full((y.shape[0], len(where)), np.nan)
    return np.insert(x.astype(float), where, marks), np.insert(y, where, fill, axis=axis)


def _ms(index: pd.DatetimeIndex) -> np.ndarray:
    """Return UTC times as epoch milliseconds."""
    return index.as_unit("ms").asi8


def _window(frame: pd.DataFrame) -> list[float] | None:
    window = frame.attrs.get("window")
    return [w * 1000 for w in window] if window else None


def _latest(frame: pd.DataFrame) -> pd.Series:
    """Return each column's newest non-missing value."""
    return frame.ffill().iloc[-1].dropna()


def _values(values: np.ndarray, scale: Scale) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float) / scale.factor, DIGITS)


def axis_scale(frame: pd.DataFrame, panel: Panel) -> Scale:
    """Return the scale a time chart's y axis uses for a frame."""
    return _axis_scale(frame, panel)


def _axis_scale(frame: pd.DataFrame, panel: Panel) -> Scale:
    values = frame.to_numpy(dtype=float)
    magnitude = float(np.nanmax(np.abs(values))) if values.size and not np.isnan(values).all() else 0.0
    return scale_for(panel.unit, magnitude)


def _hover(scale: Scale) -> str:
    return f"%{{fullData.name}}: {scale.prefix}%{{y:.3~f}}{scale.suffix}<extra></extra>"


def _threshold_shapes(panel: Panel, scale: Scale) -> list[dict]:
    if not panel.thresholds:
        return []
    return [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "yref": "y",
            "y0": getattr(panel.thresholds, level) / scale.factor,
            "y1": getattr(panel.thresholds, level) / scale.factor,
            "line": {"color": STATUS_COLORS[level], "dash": "dot", "width": 1},
        }
        for level in ("warn", "crit")
    ]


def _time_layout(frame: pd.DataFrame, panel: Panel, scale: Scale, **extra) -> dict:
    yaxis = {
        "ticksuffix": scale.suffix,
        "tickprefix": scale.prefix,
        "rangemode": "tozero",
        "automargin": True,
    }
    if panel.unit == "ratio":
        top = float(np.nanmax(frame.to_numpy(dtype=float)))
        yaxis["range"] = [0, 100 * max(1.0, top)]
    low = None if panel.min is None else panel.min / scale.factor
    high = None if panel.max is None else panel.max / scale.factor
    if low is not None and high is not None:
        yaxis["range"] = [low, high]
    elif low is not None or high is not None:
        yaxis.pop("range", None)
        yaxis["autorangeoptions"] = {
            k: v for k, v in (("minallowed", low), ("maxallowed", high)) if v is not None
        }
        if low is not None and low < 0:
            yaxis["rangemode"] = "normal"
    layout = {
        "xaxis": {"type": "date", "range": _window(frame), "showgrid": False, "automargin": True},
        "yaxis": yaxis,
        "shapes": _threshold_shapes(panel, scale),
    }
    if len(frame.columns) > 1:
        layout.update(showlegend=True, legend={"orientation": "h", "y": -0.15, "x": 0})
    layout.update(extra)
    return layout


def line(frame: pd.DataFrame, panel: Panel, fill: str | None = None) -> Figure:
    """Plot one line per series over time."""
    if frame.empty:
        return no_data(panel)
    scale = _axis_scale(frame, panel)
    traces = []
    for i, column in enumerate(frame.columns):
        values = frame[column].dropna()
        x, y = _break_gaps(_ms(values.index), _values(values.to_numpy(), scale), frame.attrs.get("step"))
        trace = {
            "type": "scatter",
            "mode": "lines",
            "name": str(column),
            "legendgroup": str(column),
            "line": {"width": 2, **series_line(i)},
            "hovertemplate": _hover(scale),
        }
        if panel.stack:
            # Stacked series add up point by point: a gap counts as zero, as Grafana stacks them.
            trace.update(
                stackgroup="stack",
                x=_ms(frame.index),
                y=np.nan_to_num(_values(frame[column].to_numpy(dtype=float), scale)),
            )
            if not fill:
                trace["fill"] = "none"
            traces.append(trace)
            continue
        if not fill:
            traces.append({**trace, "x": x, "y": y})
            continue
        # Plotly fills across missing points (plotly.js #7448): one trace per unbroken run instead.
        runs = np.split(np.arange(len(y)), np.flatnonzero(np.isnan(y)))
        for n, run in enumerate(r[~np.isnan(y[r])] for r in runs):
            if len(run):
                traces.append({**trace, "x": x[run], "y": y[run], "fill": fill, "showlegend": n == 0})
    return _figure(traces, **_time_layout(frame, panel, scale))


def area(frame: pd.DataFrame, panel: Panel) -> Figure:
    """Plot series as filled areas (not stacked: a pause must show as a gap, and stacks bridge it)."""
    return line(frame, panel, fill="tozeroy")


def bar(frame: pd.DataFrame, panel: Panel) -> Figure:
    """Compare series by their newest value, one horizontal bar each."""
    if frame.empty:
        return no_data(panel)
    latest = _latest(frame)
    scale = scale_for(panel.unit, float(latest.abs().max()))
    if panel.thresholds:
        colors = [STATUS_COLORS[panel.thresholds.level(v)] for v in latest]
    else:
        colors = [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(latest))]
    trace = {
        "type": "bar",
        "orientation": "h",
        "x": _values(latest.to_numpy(), scale),
        "y": [str(c) for c in latest.index],
        "marker": {"color": colors},
        "text": [format_value(v, panel.unit) for v in latest],
        "textposition": "auto",
        "hovertemplate": "%{y}: %{text}<extra></extra>",
    }
    xaxis = {
        "ticksuffix": scale.suffix,
        "tickprefix": scale.prefix,
        "rangemode": "tozero",
        "automargin": True,
    }
    if panel.unit == "ratio":
        xaxis["range"] = [0, 100]
    return _figure(
        [trace], hovermode="closest", xaxis=xaxis, yaxis={"automargin": True, "autorange": "reversed"}
    )


def pie(frame: pd.DataFrame, panel: Panel) -> Figure:
    """Show how the newest values of the series share a whole."""
    latest = _latest(frame) if not frame.empty else pd.Series(dtype=float)
    latest = latest[latest > 0]
    if latest.empty:
        return no_data(panel)
    trace = {
        "type": "pie",
        "labels": [str(c) for c in latest.index],
        "values": latest.to_numpy(),
        "hole": 0.5,
        "text": [format_value(v, panel.unit) for v in latest],
        "textinfo": "percent",
        "textposition": "inside",  # a sliver's label would be pushed outside and clipped: it is hidden
        "hovertemplate": "%{label}: %{text} (%{percent})<extra></extra>",
        "sort": False,
    }
    return _figure(
        [trace],
        hovermode="closest",
        showlegend=True,
        legend={"orientation": "v", "x": 1, "y": 0.5},
        uniformtext={"minsize": 10, "mode": "hide"},
    )


def _number(panel: Panel, value: float) -> tuple[Scale, dict]:
    if panel.unit in (None, "none", "count"):
        return Scale(1, ""), {"valueformat": ",.3~r"}
    scale = scale_for(panel.unit, value)
    fmt = ",.2f" if panel.unit == "currency" else ".3~g"
    return scale, {"prefix": scale.prefix, "suffix": scale.suffix, "valueformat": fmt}


def _dial(panel: Panel, largest: float) -> tuple[float, float]:
    """A gauge's scale: the panel's min and max, else 0 and 100% for ratios or a quarter past the value."""
    top = (
        panel.max if panel.max is not None else (1.0 if panel.unit == "ratio" else max(largest * 1.25, 1e-9))
    )
    return (panel.min if panel.min is not None else 0.0), top


def gauge(frame: pd.DataFrame, panel: Panel) -> Figure:
    """Show the newest value of the first series on a dial with threshold bands."""
    if frame.empty:
        return no_data(panel)
    if len(frame.columns) > 1:
        return several(frame, panel, gauge)
    value = float(_latest(frame).iloc[0])
    bottom, top = _dial(panel, value)
    scale, number = _number(panel, top)
    steps = []
    if panel.thresholds:
        t = panel.thresholds
        if t.direction == "above":
            bands = [(bottom, t.warn, "ok"), (t.warn, t.crit, "warn"), (t.crit, top, "crit")]
        else:
            bands = [(bottom, t.crit, "crit"), (t.crit, t.warn, "warn"), (t.warn, top, "ok")]
        steps = [
            {"range": [a / scale.factor, b / scale.factor], "color": STATUS_COLORS[level], "thickness": 0.25}
            for a, b, level in bands
        ]
    color = STATUS_COLORS[panel.thresholds.level(value)] if panel.thresholds else SERIES_COLORS[0]
    trace = {
        "type": "indicator",
        "mode": "gauge+number",
        "value": value / scale.factor,
        "number": number,
        "gauge": {
            "axis": {
                "range": [bottom / scale.factor, top / scale.factor],
                "ticksuffix": scale.suffix.strip(),
            },
            "bar": {"color": color, "thickness": 0.6},
            "steps": steps,
            "borderwidth": 0,
        },
    }
    return _figure([trace], margin={"l": 48, "r": 48, "t": 20, "b": 4})


def stat(frame: pd.DataFrame, panel: Panel) -> Figure:
    """Show a big number, its change against the previous period and a sparkline."""
    if len(frame.columns) > 1:
        return several(frame, panel, stat)
    column = frame[frame.columns[0]].dropna() if not frame.empty else pd.Series(dtype=float)
    if column.empty:
        return no_data(panel)
    now, value = column.index[-1], float(column.iloc[-1])
    window = frame.attrs.get("window")
    if window and (window[1] - now.timestamp()) > STALE_AFTER + (frame.attrs.get("step") or 0):
        # The series stopped: its last value is history, not the current reading.
        when = now.strftime("%Y-%m-%d %H:%M UTC")
        return no_data(
            panel,
            f"Stopped reporting<br><span style='font-size:11px;opacity:0.7'>last sample {when}</span>",
        )
    current, reference = column, None
    period = frame.attrs.get("period")
    if period:
        cut = now - pd.Timedelta(seconds=period)
        current = column[column.index > cut]
        earlier = column[column.index <= cut]
        if not earlier.empty:
            reference = float(earlier.iloc[-1])
    scale, number = _number(panel, value)
    level = panel.thresholds.level(value) if panel.thresholds else None
    # A long reading ("25.2 min" in a sixth of the page) gets smaller type, so it fits its box:
    # about 1,240 px across 12 columns at 1280 px, less the padding, digits about 0.62 em wide.
    width = panel.grid.w / 12 * 1240 - 40
    size = max(22, min(40, int(width / (0.62 * max(len(format_value(value, panel.unit)), 1)))))
    number["font"] = {"size": size, **({"color": STATUS_COLORS[level]} if level else {})}
    traces = []
    if len(current) > 1:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": _ms(current.index),
                "y": _values(current.to_numpy(), scale),
                "fill": "tozeroy",
                "line": {"width": 1.5, "color": STATUS_COLORS.get(level, SERIES_COLORS[0])},
                "opacity": 0.3,
                "hoverinfo": "skip",
            }
        )
    indicator = {
        "type": "indicator",
        "mode": "number+delta" if reference is not None else "number",
        "value": value / scale.factor,
        "number": number,
        "domain": {"x": [0, 1], "y": [0.25, 1]},
    }
    if reference is not None:
        # Rising is good unless thresholds say that high values are the bad ones.
        rising_bad = panel.thresholds is not None and panel.thresholds.direction == "above"
        up, down = (STATUS_COLORS["crit"], STATUS_COLORS["ok"])
        if not rising_bad:
            up, down = down, up
        indicator["delta"] = {
            "reference": reference / scale.factor,
            "valueformat": number["valueformat"],
            "prefix": scale.prefix,
            "suffix": scale.suffix,
            "increasing": {"color": up},
            "decreasing": {"color": down},
        }
    traces.append(indicator)
    return _figure(
        traces,
        margin={"l": 4, "r": 4, "t": 4, "b": 4},
        hovermode=False,
        xaxis={"visible": False},
        yaxis={"visible": False, "domain": [0, 0.3]},
    )


def table(frame: pd.DataFrame, panel: Panel) -> Figure:
    """List each series with its newest, lowest, mean and highest value in the window."""
    if frame.empty:
        return no_data(panel)
    rows = [(str(c), frame[c].dropna()) for c in frame.columns if frame[c].notna().any()]

    def fmt(v) -> str:
        return format_value(float(v), panel.unit)

    cells = [
        [name for name, _ in rows],
        [fmt(col.iloc[-1]) for _, col in rows],
        [fmt(col.min()) for _, col in rows],
        [fmt(col.mean()) for _, col in rows],
        [fmt(col.max()) for _, col in rows],
    ]
    trace = {
        "type": "table",
        "header": {"values": ["Series", "Now", "Min", "Mean", "Max"], "align": "left"},
        "cells": {"values": cells, "align": ["left", "right", "right", "right", "right"]},
        "columnwidth": [3, 1.2, 1.2, 1.2, 1.2],
    }
    return _figure([trace], margin={"l": 2, "r": 2, "t": 2, "b": 2})


def heatmap(frame: pd.DataFrame, panel: Panel) -> Figure:
    """Show many series over time as rows of colour, e.g. CPU cores."""
    if frame.empty:
        return no_data(panel)
    scale = _axis_scale(frame, panel)
    x, z = _break_gaps(
        _ms(frame.index), _values(frame.to_numpy(dtype=float).T, scale), frame.attrs.get("step")
    )
    trace = {
        "type": "heatmap",
        "x": x,
        "y": [str(c) for c in frame.columns],
        "z": z,
        "colorscale": "Viridis",
        "colorbar": {"ticksuffix": scale.suffix, "thickness": 10},
        "hovertemplate": f"%{{y}} %{{x}}: %{{z:.3~f}}{scale.suffix}<extra></extra>",
        "ygap": 1,
    }
    if panel.unit == "ratio":
        trace.update(zmin=0, zmax=100)
    return _figure(
        [trace],
        hovermode="closest",
        xaxis={"type": "date", "range": _window(frame), "automargin": True},
        yaxis={"type": "category", "automargin": True},
    )


MOST_SHOWN = 24  # series a stat or gauge shows side by side; past that, the worst of them


def _badness(panel: Panel, value: float) -> float:
    """Order values from best to worst: high is bad unless thresholds say low is."""
    below = panel.thresholds is not None and panel.thresholds.direction == "below"
    return -value if below else value


def several(frame: pd.DataFrame, panel: Panel, builder: Builder) -> Figure:
    """Show a stat or gauge over several series: each one in its own cell, or only the worst."""
    latest = _latest(frame).dropna()
    if latest.empty:
        return no_data(panel)
    ranked = sorted(latest.index, key=lambda c: _badness(panel, float(latest[c])), reverse=True)
    if panel.several == "worst" or len(ranked) > MOST_SHOWN:
        worst = ranked[0]
        figure = builder(frame[[worst]], panel)
        more = f" (worst of {len(ranked)})"
        figure["layout"].setdefault("annotations", []).append(_cell_title(f"{worst}{more}", [0, 1], [0, 1]))
        return figure
    columns = [c for c in frame.columns if c in latest.index]
    n = len(columns)
    across = min(n, max(1, round((n * panel.grid.w / max(panel.grid.h, 1)) ** 0.5)))
    rows = -(-n // across)
    traces, notes = [], []
    for i, column in enumerate(columns):
        r, c = divmod(i, across)
        x = [c / across + 0.01, (c + 1) / across - 0.01]
        y = [1 - (r + 1) / rows + 0.02, 1 - r / rows - 0.12 / rows]
        value = float(latest[column])
        scale, number = _number(panel, value)
        level = panel.thresholds.level(value) if panel.thresholds else None
        number["font"] = {
            "size": max(12, min(32, int(180 / max(across, rows)))),
            **({"color": STATUS_COLORS[level]} if level else {}),
        }
        trace = {
            "type": "indicator",
            "value": value / scale.factor,
            "number": number,
            "domain": {"x": x, "y": y},
        }
        if builder is gauge:
            bottom, top = _dial(panel, float(latest.max()))  # one scale for every cell
            trace.update(
                mode="gauge+number",
                gauge={
                    "axis": {
                        "range": [bottom / scale.factor, top / scale.factor],
                        "visible": across * rows <= 4,
                    },
                    "bar": {
                        "color": STATUS_COLORS[level] if level else SERIES_COLORS[i % len(SERIES_COLORS)]
                    },
                    "borderwidth": 0,
                },
            )
        else:
            trace["mode"] = "number"
        traces.append(trace)
        notes.append(_cell_title(str(column), x, [y[1], y[1] + 0.1 / rows]))
    return _figure(traces, margin={"l": 4, "r": 4, "t": 4, "b": 4}, hovermode=False, annotations=notes)


def _cell_title(text: str, x: list[float], y: list[float]) -> dict:
    return {
        "text": text if len(text) <= 40 else text[:39] + "…",
        "showarrow": False,
        "xref": "paper",
        "yref": "paper",
        "x": (x[0] + x[1]) / 2,
        "y": y[1],
        "xanchor": "center",
        "yanchor": "top",
        "font": {"size": 11},
    }


def note(panel: Panel) -> Figure:
    """Return a panel that shows its text (Markdown shown as plain lines)."""
    lines = []
    for raw in (panel.text or "").strip().splitlines()[:14]:
        line = raw.strip().lstrip("#>*- ").replace("**", "").replace("`", "")
        lines.append(plain(line if len(line) <= 90 else line[:89] + "…"))
    return _figure(
        [],
        xaxis={"visible": False},
        yaxis={"visible": False},
        meta={"text": True, "panel": panel.id},
        annotations=[
            {
                "text": "<br>".join(lines) or "&nbsp;",
                "showarrow": False,
                "x": 0,
                "y": 1,
                "xanchor": "left",
                "yanchor": "top",
                "align": "left",
                "xref": "paper",
                "yref": "paper",
                "font": {"size": 13},
            }
        ],
    )


CHARTS: dict[str, Builder] = {
    "line": line,
    "area": area,
    "bar": bar,
    "pie": pie,
    "gauge": gauge,
    "stat": stat,
    "table": table,
    "heatmap": heatmap,
}


def plain(text: object) -> str:
    """Return text as Plotly shows it literally: it reads <b>, <a href> and &entities; in names,
    legends, hover, ticks and table cells, and series names come from whoever pushed the labels."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_figure(frame: pd.DataFrame, panel: Panel) -> Figure:
    """Build a panel's figure with the builder its chart type names; series names show as text."""
    if not panel.queries:
        return note(panel)
    return CHARTS[panel.type](frame.rename(columns=plain), panel)


def apply_theme(fig: Figure, theme: str) -> Figure:
    """Colour a figure's text, grid, tables and dials for the light or dark theme (in place)."""
    colors = THEMES.get(theme, THEMES["light"])
    layout = fig["layout"]
    layout["font"] = {"color": colors["font"], "family": "Inter, system-ui, sans-serif", "size": 12}
    layout["hoverlabel"] = {"bgcolor": colors["hover"], "font": {"color": colors["font"]}}
    for axis in ("xaxis", "yaxis"):
        layout.setdefault(axis, {}).update(
            gridcolor=colors["grid"], linecolor=colors["grid"], zerolinecolor=colors["grid"]
        )
    for trace in fig["data"]:
        if trace["type"] == "table":
            line = {"color": colors["grid"]}
            trace["header"].update(fill={"color": colors["track"]}, font={"color": colors["font"]}, line=line)
            trace["cells"].update(fill={"color": "rgba(0,0,0,0)"}, font={"color": colors["font"]}, line=line)
        elif trace["type"] == "indicator" and "gauge" in trace:
            trace["gauge"]["bgcolor"] = colors["track"]
    return fig
