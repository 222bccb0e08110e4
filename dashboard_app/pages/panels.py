"""Run a panel's queries through a source and turn the result into a themed figure."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from dashboard_app.sources.source import NotPermitted, Source, SourceUnavailable
from layouts.charts import Figure, apply_theme, build_figure, no_data, plain
from layouts.overlays import TIME_CHARTS, mark_anomalies, mark_episodes
from layouts.schema import Dashboard, Panel, PanelQuery, Variable
from query.evaluate import Query
from query.promql import printer
from query.promql.shorthand import is_selector
from query.promql.values import BadData, Execution, Timeout
from query.promql.variables import references, substitute
from tsdb.aggregator import QueryError, empty_frame, utc_index
from tsdb.selector import parse_selector

log = logging.getLogger(__name__)


PEAK_CHARTS = ("line", "area")
PEAK_SAMPLES = 4  # a point standing for this many sampling intervals shows their lowest and highest


@dataclass(frozen=True)
class Window:
    """The time range a page shows, in Unix seconds."""

    start: float
    end: float

    @property
    def span(self) -> float:
        return self.end - self.start


def resolve_unit(source: Source, panel: Panel) -> Panel:
    """Fill in a panel's unit from the metric table when the config leaves it out."""
    if panel.unit is not None:
        return panel
    metric = panel.queries[0].metric if panel.queries else None
    unit = (source.unit(metric) if metric else None) or "none"
    return panel.model_copy(update={"unit": unit})


def query_panel(source: Source, promql: str) -> Panel:
    """The line panel one PromQL query is drawn as (Explore, its CSV), its unit from the metric."""
    return resolve_unit(
        source, Panel(id="query", title="Query", type="line", queries=[PanelQuery(expr=promql)])
    )


def panel_metrics(panel: Panel) -> list[str]:
    """Every metric a panel's queries read, each once."""
    return list(dict.fromkeys(name for q in panel.queries for name in q.compiled.metrics))


def narrow_panel(panel: Panel, chosen: dict[str, str], variables: tuple[Variable, ...]) -> Panel:
    """Return a panel whose queries hold the dashboard variables' values.

    A query that names a variable gets its value put in; a label variable that narrows keeps only
    the chosen value in every query that does not name it (nor another variable of its label).
    """
    narrowing = {
        v.name: (v.listed_label, chosen[v.name])
        for v in variables
        if v.kind == "label" and v.narrow and chosen.get(v.name)
    }

    def bind(expr: str | None) -> str | None:
        if expr is None:
            return None
        named = set(references(expr))
        if named:
            expr = substitute(
                expr, {v.name: v.value(chosen.get(v.name)) for v in variables if v.name in named}
            )
        said = {v.listed_label for v in variables if v.name in named}
        labels = {
            label: value
            for name, (label, value) in narrowing.items()
            if name not in named and label not in said
        }
        if not labels:
            return expr
        if is_selector(expr):
            return str(parse_selector(expr).narrowed(labels))
        return printer.narrow(expr, labels)

    if not variables:
        return panel
    bound = [(q, bind(q.expr), bind(q.over)) for q in panel.queries]
    if all(expr == q.expr and over == q.over for q, expr, over in bound):
        return panel  # nothing named a variable: the same panel, so its shared answers stay found
    queries = tuple(q.model_copy(update={"expr": expr, "over": over}) for q, expr, over in bound)
    return panel.model_copy(update={"queries": queries})


def narrow_dashboard(dashboard: Dashboard, chosen: dict[str, str]) -> Dashboard:
    """Return a dashboard whose every panel holds the variables' values."""
    if not dashboard.variables:
        return dashboard
    panels = tuple(narrow_panel(p, chosen, dashboard.variables) for p in dashboard.panels)
    return dashboard.model_copy(update={"panels": panels})


def query_frame(
    source: Source, q: PanelQuery, start: float, end: float, step: float, peaks: bool = False
) -> pd.DataFrame:
    """Run one panel query through the engine over [start, end] at ``step``.

    ``peaks`` draws a plain average as each step's lowest and highest value instead (two points a
    step, at its middle and its end), so no spike or dip disappears when zoomed out.
    """
    compiled = q.compiled
    ask = Query(compiled.promql, start, end, step, q.legend, q.metric).aligned()
    if not (peaks and compiled.band):
        return source.evaluate(ask)
    low = source.evaluate(replace(ask, promql=compiled.band[0]))
    high = source.evaluate(replace(ask, promql=compiled.band[1]))
    if low.empty or high.empty:
        return high
    # Each step's lowest half a step before its highest, interleaved in one frame made once.
    half = round(step * 500)  # ms
    times = np.concatenate([low.index.as_unit("ms").asi8 - half, high.index.as_unit("ms").asi8])
    values = np.vstack([low.reindex(columns=high.columns).to_numpy(dtype=float), high.to_numpy(dtype=float)])
    order = np.argsort(times, kind="stable")
    both = pd.DataFrame(values[order], index=utc_index(times[order]), columns=high.columns)
    both.attrs = high.attrs
    return both


def panel_frame(
    source: Source, panel: Panel, window: Window, points: int, peaks: bool = True
) -> pd.DataFrame:
    """Query every series a panel shows; a stat panel also gets the period before the window.

    Zoomed out, a line's point stands for many samples: it shows their lowest and highest, so no
    spike or dip disappears into an average (two points per bucket, as many points in all).
    ``peaks=False`` keeps plain buckets, where someone chose the step and aggregation themselves.
    """
    step, peaks = bucket_step(source, panel, window.span, points, peaks)
    start = window.start - window.span if panel.type == "stat" else window.start
    frames = [query_frame(source, q, start, window.end, step, peaks) for q in panel.queries]
    frames = [f for f in frames if not f.empty]
    if not frames:
        frame = empty_frame()
    elif len(frames) == 1:
        frame = frames[0]
    else:
        frame = pd.concat(frames, axis=1, sort=True)
    frame.attrs = {
        "window": (window.start, window.end),  # plain floats: pandas deep-copies attrs on every operation
        "period": window.span,
        "step": step,
    }
    return frame


def bucket_step(
    source: Source, panel: Panel, span: float, points: int, peaks: bool = True
) -> tuple[float, bool]:
    """Return the step of a panel's buckets over a span, and whether they show lowest and highest."""
    step = max(span / points, source.min_step, panel.step or 0.0)
    peaks = peaks and panel.type in PEAK_CHARTS and step >= PEAK_SAMPLES * source.min_step
    return (step * 2 if peaks else step), peaks


def render_panel(
    source: Source,
    panel: Panel,
    window: Window,
    theme: str,
    points: int,
    episodes: Callable[[str, float, float], list[dict]] | None = None,
    trouble: Callable[[str], str | None] | None = None,
) -> Figure:
    """Return the figure a panel shows for a window and theme; a failure shows in that panel only.

    ``episodes(metric, start, end)`` gives the firing periods of alert rules on a metric, which
    time charts shade; ``trouble(metric)`` says why a metric's collector is not delivering, which
    the panel then says too (and stops saying once the collector recovers).
    """
    try:
        panel = resolve_unit(source, panel)
        frame = panel_frame(source, panel, window, points)
        figure = build_figure(frame, panel)
        if panel.anomalies and panel.type in TIME_CHARTS and not frame.empty:
            figure = mark_anomalies(figure, frame, panel)
        if (
            episodes is not None
            and panel.type in TIME_CHARTS
            and not figure["layout"].get("meta", {}).get("empty")
        ):
            marked = [e for name in panel_metrics(panel) for e in episodes(name, window.start, window.end)]
            if marked:
                figure = mark_episodes(figure, marked, window.start, window.end)
        problem = panel_trouble(panel, trouble)
        if problem:
            figure = say_unavailable(figure, panel, problem)
    except (
        QueryError,
        SourceUnavailable,
        NotPermitted,
        BadData,
        Execution,
        Timeout,
    ) as exc:  # the reason fits in the panel
        reason = html.escape(str(exc))
        figure = no_data(panel, f"Cannot draw this panel<br><span style='font-size:11px'>{reason}</span>")
    except Exception as exc:  # one broken panel must not blank the whole page
        log.exception("panel %s failed", panel.id)
        figure = no_data(panel, f"Cannot draw this panel: {type(exc).__name__}")
    return apply_theme(figure, theme)


def panel_trouble(panel: Panel, trouble: Callable[[str], str | None] | None) -> str | None:
    """Return why a panel's data is not arriving, if one of its collectors is failing or hung."""
    if trouble is None:
        return None
    return next((t for t in map(trouble, panel_metrics(panel)) if t), None)


def say_unavailable(figure: Figure, panel: Panel, problem: str) -> Figure:
    """Put the reason on the panel: instead of "no data", or above the last data it has."""
    problem = plain(problem)  # a collector's error may quote what a target sent
    if (figure["layout"].get("meta") or {}).get("empty"):
        return no_data(panel, f"Unavailable<br><span style='font-size:11px'>{problem}</span>")
    note = {
        "text": f"⚠ not updating: {problem}",
        "xref": "paper",
        "yref": "paper",
        "x": 0,
        "y": 1,
        "xanchor": "left",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 11, "color": "#d64545"},
    }
    layout = {**figure["layout"], "annotations": [*figure["layout"].get("annotations", []), note]}
    layout["meta"] = {**(layout.get("meta") or {}), "unavailable": problem}
    return {**figure, "layout": layout}


def render_dashboard(
    source: Source, dashboard: Dashboard, window: Window, theme: str, points: int
) -> list[Figure]:
    """Return every panel's figure, in the dashboard's order."""
    return [render_panel(source, panel, window, theme, points) for panel in dashboard.panels]
