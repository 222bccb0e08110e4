"""Overlays on time charts: alert firing periods, anomalous points and a forecast with its band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from layouts.charts import SERIES_COLORS, STATUS_COLORS, Figure, axis_scale, plain
from layouts.schema import Panel
from query.statistics import Forecast, anomalies

TIME_CHARTS = ("line", "area")
EPISODE_FILL = "rgba(220, 38, 38, 0.12)"


def mark_episodes(fig: Figure, episodes: list[dict], window_start: float, now: float) -> Figure:
    """Shade the periods in which alerts fired, with the alert's name at the top of each."""
    late = window_start + 0.7 * (now - window_start)  # a label that starts late is set to the left
    layout = dict(fig["layout"])
    shapes = list(layout.get("shapes", []))
    notes = list(layout.get("annotations", []))
    for e in episodes:
        start, end = e["fired_at"] * 1000, min(e["until"], now) * 1000
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": start,
                "x1": max(end, start + 1000),
                "y0": 0,
                "y1": 1,
                "fillcolor": EPISODE_FILL,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        right = e["fired_at"] > late
        notes.append(
            {
                "x": max(end, start + 1000) if right else start,
                "xref": "x",
                "y": 1,
                "yref": "paper",
                "text": f"⚠ {plain(e['name'])}",
                "showarrow": False,
                "xanchor": "right" if right else "left",
                "yanchor": "top",
                "font": {"size": 10, "color": STATUS_COLORS["crit"]},
            }
        )
    layout.update(shapes=shapes, annotations=notes, meta={**layout.get("meta", {}), "alerts": len(episodes)})
    return {**fig, "layout": layout}


def _with_traces(fig: Figure, traces: list[dict], **layout) -> Figure:
    return {"data": [*fig["data"], *traces], "layout": {**fig["layout"], **layout}}


def mark_anomalies(fig: Figure, frame: pd.DataFrame, panel: Panel, threshold: float = 4.0) -> Figure:
    """Add a red marker on every point far from its rolling median (robust z-score over MAD)."""
    scale = axis_scale(frame, panel)
    traces = []
    times = frame.index.as_unit("ms").asi8
    found = 0
    for column in frame.columns:
        values = frame[column].to_numpy(dtype=float)
        idx = anomalies(values, threshold=threshold)
        if len(idx) == 0:
            continue
        found += len(idx)
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{plain(column)} anomalies",
                "x": times[idx],
                "y": np.round(values[idx] / scale.factor, 4),
                "marker": {
                    "color": STATUS_COLORS["crit"],
                    "size": 8,
                    "symbol": "circle-open",
                    "line": {"width": 2},
                },
                "hovertemplate": f"anomaly: {scale.prefix}%{{y:.3~f}}{scale.suffix}<extra></extra>",
                "showlegend": False,
            }
        )
    meta = {**(fig["layout"].get("meta") or {}), "anomalies": found}
    return _with_traces(fig, traces, meta=meta)


def add_forecasts(fig: Figure, frame: pd.DataFrame, panel: Panel, forecasts: dict[str, Forecast]) -> Figure:
    """Add each series' forecast as a dashed line inside a shaded 95 % band, and widen the x axis to it."""
    scale = axis_scale(frame, panel)
    traces = []
    last = None
    for i, (column, f) in enumerate(forecasts.items()):
        color = (
            SERIES_COLORS[list(frame.columns).index(column) % len(SERIES_COLORS)]
            if column in frame
            else SERIES_COLORS[i % len(SERIES_COLORS)]
        )
        x = (f.times * 1000).astype("int64")
        last = max(last or 0, int(x[-1]))
        band = {
            "type": "scatter",
            "mode": "lines",
            "line": {"width": 0, "color": color},
            "hoverinfo": "skip",
            "showlegend": False,
        }
        traces.append(
            {**band, "x": x, "y": np.round(f.high / scale.factor, 4), "name": f"{plain(column)} high"}
        )
        traces.append(
            {
                **band,
                "x": x,
                "y": np.round(f.low / scale.factor, 4),
                "name": f"{plain(column)} low",
                "fill": "tonexty",
                "fillcolor": _faint(color),
            }
        )
        observed = frame[column].dropna() if column in frame else None
        x_line, y_line = x, f.values
        if observed is not None and len(observed):  # start the dashed line at the last reading: no gap
            x_line = np.concatenate([[int(observed.index[-1].value // 1_000_000)], x])
            y_line = np.concatenate([[float(observed.iloc[-1])], f.values])
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{plain(column)} forecast ({f.method})",
                "x": x_line,
                "y": np.round(y_line / scale.factor, 4),
                "line": {"width": 2, "dash": "dash", "color": color},
                "hovertemplate": f"forecast: {scale.prefix}%{{y:.3~f}}{scale.suffix}<extra></extra>",
            }
        )
    layout = dict(fig["layout"])
    xaxis = dict(layout.get("xaxis", {}))
    if last is not None and xaxis.get("range"):
        xaxis["range"] = [xaxis["range"][0], last]
    return _with_traces(
        fig, traces, xaxis=xaxis, meta={**(layout.get("meta") or {}), "forecasts": len(forecasts)}
    )


def _faint(hex_color: str) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, 0.15)"
