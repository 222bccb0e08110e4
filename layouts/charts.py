"""The eight chart builders: pure functions of a frame and a panel that return a Plotly figure.

A frame has a UTC time index and one column per series. ``frame.attrs`` may carry
``window`` (start, end as pandas Timestamps) for the x-range and ``period`` (seconds)
for a stat panel's comparison with the previous period.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from layouts.schema import Panel
from layouts.units import Scale, format_value, scale_for, scale_values

STATUS_COLORS = {"ok": "#2e9e5b", "warn": "#d99a00", "crit": "#d64545"}
SERIES_COLORS = ("#3b82f6", "#f97316", "#10b981", "#a855f7", "#ef4444", "#14b8a6", "#eab308", "#ec4899")
THEMES = {
    "light": {"font": "#1f2937", "grid": "#e5e7eb", "muted": "#6b7280", "track": "#e5e7eb"},
    "dark": {"font": "#e5e7eb", "grid": "#374151", "muted": "#9ca3af", "track": "#374151"},
}
NO_DATA = "No data yet"

Builder = Callable[[pd.DataFrame, Panel], go.Figure]


def _base(**layout) -> go.Figure:
    fig = go.Figure()
    defaults = {
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "showlegend": False,
        "hovermode": "x unified",
        "colorway": SERIES_COLORS,
    }
    fig.update_layout(**{**defaults, **layout})
    return fig


def no_data(panel: Panel, message: str = NO_DATA) -> go.Figure:
    """Return an empty figure that says, in words, why there is nothing to show."""
    fig = _base()
    fig.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 15}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(meta={"empty": True, "panel": panel.id})
    return fig


def _latest(frame: pd.DataFrame) -> pd.Series:
    """Return each column's newest non-missing value."""
    return frame.ffill().iloc[-1].dropna()


def _scale(frame: pd.DataFrame, panel: Panel) -> tuple[Scale, pd.DataFrame]:
    return scale_values(frame, panel.unit)


def _time_axes(fig: go.Figure, frame: pd.DataFrame, scale: Scale, panel: Panel) -> None:
    window = frame.attrs.get("window")
    fig.update_xaxes(type="date", range=list(window) if window else None, showgrid=False, title=None)
    fig.update_yaxes(ticksuffix=scale.suffix, tickprefix=scale.prefix, rangemode="tozero", title=None)
    if panel.unit == "ratio":
        fig.update_yaxes(range=[0, 100 * max(1.0, float(np.nanmax(frame.to_numpy())))])
    if len(frame.columns) > 1:
        fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.15, "x": 0})


def _threshold_lines(fig: go.Figure, panel: Panel, scale: Scale) -> None:
    if panel.thresholds:
        for level in ("warn", "crit"):
            fig.add_hline(
                y=scale.apply(getattr(panel.thresholds, level)),
                line={"color": STATUS_COLORS[level], "dash": "dot", "width": 1},
            )


def _hover(scale: Scale, name: str = "%{fullData.name}") -> str:
    return f"{name}: {scale.prefix}%{{y:.3~f}}{scale.suffix}<extra></extra>"


def line(frame: pd.DataFrame, panel: Panel, fill: str | None = None) -> go.Figure:
    """Plot one line per series over time."""
    if frame.empty:
        return no_data(panel)
    scale, scaled = _scale(frame, panel)
    fig = _base()
    for column in scaled.columns:
        values = scaled[column].dropna()
        fig.add_trace(
            go.Scatter(
                x=values.index,
                y=values.to_numpy(),
                name=str(column),
                mode="lines",
                line={"width": 2},
                fill=fill,
                hovertemplate=_hover(scale),
            )
        )
    _time_axes(fig, frame, scale, panel)
    _threshold_lines(fig, panel, scale)
    return fig


def area(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """Plot series as filled areas, stacked when there are several."""
    fig = line(frame, panel, fill="tozeroy")
    if len(frame.columns) > 1 and not frame.empty:
        fig.update_traces(stackgroup="one", fill=None)
    return fig


def bar(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """Compare series by their newest value, one horizontal bar each."""
    if frame.empty:
        return no_data(panel)
    latest = _latest(frame)
    scale, scaled = scale_values(latest, panel.unit)
    colors = (
        [STATUS_COLORS[panel.thresholds.level(v)] for v in latest]
        if panel.thresholds
        else [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(latest))]
    )
    fig = _base(hovermode="closest")
    fig.add_trace(
        go.Bar(
            x=scaled.to_numpy(),
            y=[str(c) for c in latest.index],
            orientation="h",
            marker={"color": colors},
            text=[format_value(v, panel.unit) for v in latest],
            textposition="auto",
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    fig.update_xaxes(ticksuffix=scale.suffix, tickprefix=scale.prefix, rangemode="tozero")
    if panel.unit == "ratio":
        fig.update_xaxes(range=[0, 100])
    fig.update_yaxes(automargin=True, autorange="reversed")
    return fig


def pie(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """Show how the newest values of the series share a whole."""
    latest = _latest(frame) if not frame.empty else pd.Series(dtype=float)
    latest = latest[latest > 0]
    if latest.empty:
        return no_data(panel)
    fig = _base(hovermode="closest", showlegend=True, legend={"orientation": "v", "x": 1, "y": 0.5})
    fig.add_trace(
        go.Pie(
            labels=[str(c) for c in latest.index],
            values=latest.to_numpy(),
            hole=0.5,
            text=[format_value(v, panel.unit) for v in latest],
            textinfo="percent",
            hovertemplate="%{label}: %{text} (%{percent})<extra></extra>",
            sort=False,
        )
    )
    return fig


def _number_format(panel: Panel, value: float) -> tuple[Scale, dict]:
    scale = scale_for(panel.unit, value)
    digits = (
        ",.2f" if panel.unit == "currency" else ".3~s" if panel.unit in (None, "none", "count") else ".3~g"
    )
    if panel.unit in (None, "none", "count"):
        scale = Scale(1, "")
    return scale, {"prefix": scale.prefix, "suffix": scale.suffix, "valueformat": digits}


def gauge(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """Show the newest value of the first series on a dial with threshold bands."""
    if frame.empty:
        return no_data(panel)
    value = float(_latest(frame).iloc[0])
    top = panel.max if panel.max is not None else (1.0 if panel.unit == "ratio" else max(value * 1.25, 1e-9))
    scale, number = _number_format(panel, top)
    steps = []
    if panel.thresholds:
        t = panel.thresholds
        bands = (
            [(0, t.warn, "ok"), (t.warn, t.crit, "warn"), (t.crit, top, "crit")]
            if t.direction == "above"
            else [(0, t.crit, "crit"), (t.crit, t.warn, "warn"), (t.warn, top, "ok")]
        )
        steps = [
            {"range": [scale.apply(a), scale.apply(b)], "color": STATUS_COLORS[level], "thickness": 0.25}
            for a, b, level in bands
        ]
    color = STATUS_COLORS[panel.thresholds.level(value)] if panel.thresholds else SERIES_COLORS[0]
    fig = _base(margin={"l": 24, "r": 24, "t": 16, "b": 0})
    fig.add_trace(
        go.Indicator(
            mode="gauge+number",
            value=scale.apply(value),
            number=number,
            gauge={
                "axis": {"range": [0, scale.apply(top)], "ticksuffix": scale.suffix.strip()},
                "bar": {"color": color, "thickness": 0.6},
                "steps": steps,
                "borderwidth": 0,
            },
        )
    )
    return fig


def stat(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """Show a big number, its change against the previous period and a sparkline."""
    column = frame[frame.columns[0]].dropna() if not frame.empty else pd.Series(dtype=float)
    if column.empty:
        return no_data(panel)
    now, value = column.index[-1], float(column.iloc[-1])
    period = frame.attrs.get("period")
    current = column
    reference = None
    if period:
        cut = now - pd.Timedelta(seconds=period)
        current = column[column.index > cut]
        earlier = column[column.index <= cut]
        if not earlier.empty:
            reference = float(earlier.iloc[-1])
    scale, number = _number_format(panel, value)
    level = panel.thresholds.level(value) if panel.thresholds else None
    number["font"] = {"size": 40, **({"color": STATUS_COLORS[level]} if level else {})}
    fig = _base(margin={"l": 4, "r": 4, "t": 4, "b": 4}, hovermode=False)
    if len(current) > 1:
        sparkline = scale.apply(current.to_numpy())
        fig.add_trace(
            go.Scatter(
                x=current.index,
                y=sparkline,
                mode="lines",
                fill="tozeroy",
                line={"width": 1.5, "color": STATUS_COLORS.get(level, SERIES_COLORS[0])},
                opacity=0.3,
                hoverinfo="skip",
            )
        )
    indicator = {
        "mode": "number+delta" if reference is not None else "number",
        "value": scale.apply(value),
        "number": number,
        "domain": {"x": [0, 1], "y": [0.25, 1]},
    }
    if reference is not None:
        # Rising is good unless thresholds say that high values are the bad ones.
        rising_bad = panel.thresholds is not None and panel.thresholds.direction == "above"
        up, down = (
            (STATUS_COLORS["crit"], STATUS_COLORS["ok"])
            if rising_bad
            else (STATUS_COLORS["ok"], STATUS_COLORS["crit"])
        )
        indicator["delta"] = {
            "reference": scale.apply(reference),
            "valueformat": number["valueformat"],
            "suffix": scale.suffix,
            "increasing": {"color": up},
            "decreasing": {"color": down},
        }
    fig.add_trace(go.Indicator(**indicator))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, domain=[0, 0.3])
    return fig


def table(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """List each series with its newest, lowest, mean and highest value in the window."""
    if frame.empty:
        return no_data(panel)
    rows = [(str(c), frame[c].dropna()) for c in frame.columns if frame[c].notna().any()]
    fmt = lambda v: format_value(float(v), panel.unit)  # noqa: E731
    cells = [
        [name for name, _ in rows],
        [fmt(col.iloc[-1]) for _, col in rows],
        [fmt(col.min()) for _, col in rows],
        [fmt(col.mean()) for _, col in rows],
        [fmt(col.max()) for _, col in rows],
    ]
    fig = _base(margin={"l": 2, "r": 2, "t": 2, "b": 2})
    fig.add_trace(
        go.Table(
            header={"values": ["Series", "Now", "Min", "Mean", "Max"], "align": "left"},
            cells={"values": cells, "align": ["left", "right", "right", "right", "right"]},
            columnwidth=[3, 1.2, 1.2, 1.2, 1.2],
        )
    )
    return fig


def heatmap(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """Show many series over time as rows of colour, e.g. CPU cores."""
    if frame.empty:
        return no_data(panel)
    scale, scaled = _scale(frame, panel)
    zmax = 100.0 if panel.unit == "ratio" else None
    fig = _base(hovermode="closest")
    fig.add_trace(
        go.Heatmap(
            x=scaled.index,
            y=[str(c) for c in scaled.columns],
            z=scaled.T.to_numpy(),
            zmin=0 if zmax else None,
            zmax=zmax,
            colorscale="Turbo",
            colorbar={"ticksuffix": scale.suffix, "thickness": 10},
            hovertemplate=f"%{{y}} %{{x}}: %{{z:.3~f}}{scale.suffix}<extra></extra>",
            xgap=0,
            ygap=1,
        )
    )
    window = frame.attrs.get("window")
    fig.update_xaxes(type="date", range=list(window) if window else None)
    fig.update_yaxes(type="category", automargin=True)
    return fig


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


def build_figure(frame: pd.DataFrame, panel: Panel) -> go.Figure:
    """Build a panel's figure with the builder its chart type names."""
    return CHARTS[panel.type](frame, panel)


def apply_theme(fig: go.Figure, theme: str) -> go.Figure:
    """Colour a figure's text, grid and tables for the light or dark theme."""
    colors = THEMES.get(theme, THEMES["light"])
    fig.update_layout(
        font={"color": colors["font"], "family": "Inter, system-ui, sans-serif", "size": 12},
        hoverlabel={
            "bgcolor": "#111827" if theme == "dark" else "#ffffff",
            "font": {"color": colors["font"]},
        },
    )
    fig.update_xaxes(gridcolor=colors["grid"], linecolor=colors["grid"], zerolinecolor=colors["grid"])
    fig.update_yaxes(gridcolor=colors["grid"], linecolor=colors["grid"], zerolinecolor=colors["grid"])
    fig.update_traces(
        selector={"type": "table"},
        header={
            "fill": {"color": colors["track"]},
            "font": {"color": colors["font"]},
            "line": {"color": colors["grid"]},
        },
        cells={
            "fill": {"color": "rgba(0,0,0,0)"},
            "font": {"color": colors["font"]},
            "line": {"color": colors["grid"]},
        },
    )
    fig.update_traces(selector={"type": "indicator"}, gauge_bgcolor=colors["track"])
    return fig
