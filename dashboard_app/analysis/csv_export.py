"""CSV for analysts: a query streamed in chunks, a panel as the page shows it, a dashboard as a zip."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from dashboard_app.pages.panels import Window, panel_frame, query_frame, query_panel, resolve_unit
from dashboard_app.sources.source import NotPermitted, Source
from layouts.schema import Dashboard, Panel
from query.evaluate import Query
from query.promql.shorthand import compile_query
from tsdb.metrics import freeze_labels
from tsdb.selector import parse_selector

CHUNK_POINTS = 5000  # rows per query while streaming: memory stays flat whatever the range


def iso(seconds: np.ndarray) -> list[str]:
    """Return ISO 8601 UTC times with milliseconds, e.g. 2026-11-25T10:00:00.000Z."""
    return [
        datetime.fromtimestamp(float(t), UTC).isoformat(timespec="milliseconds")[:-6] + "Z" for t in seconds
    ]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(cell: object) -> object:
    """Return a cell a spreadsheet will not run: text that starts like a formula gets a leading quote.

    Numbers stay numbers (a negative value is not a formula).
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        try:
            float(cell)
        except ValueError:
            return "'" + cell
    return cell


def _line(cells: list) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([safe_cell(c) for c in cells])
    return out.getvalue()


def _number(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


def series_label(name: str, labels: dict[str, str]) -> str:
    """Name a series as a selector does: name{label="value",...}."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def stream_query(
    source: Source,
    selectors: list[str],
    start: float,
    end: float,
    step: float,
    how: str,
    unit_of: Callable[[str], str],
) -> Iterator[str]:
    """Yield CSV lines of a range query, a chunk of rows at a time, with the same numbers as the query API.

    Each selector with its aggregation is the same PromQL a panel's shorthand compiles to; chunks are
    consecutive runs of the query's own steps, so every row is the one a single query would give.
    """
    parsed = [parse_selector(text) for text in selectors]
    asked = [(p, compile_query(str(p), how, None, 1.0, None).promql) for p in parsed]
    keys = list(dict.fromkeys((s.name, freeze_labels(s.labels)) for p in parsed for s in source.series(p)))
    yield _line(["time"] + [f"{series_label(n, dict(lab))} [{unit_of(n)}]" for n, lab in keys])
    if not keys:
        return
    start_ms, step_ms = round(start * 1000), round(step * 1000)  # the steps of one query, to the ms
    chunk = 0
    while (lower := (start_ms + chunk * CHUNK_POINTS * step_ms) / 1000) <= end:
        upper = min(end, (start_ms + ((chunk + 1) * CHUNK_POINTS - 1) * step_ms) / 1000)
        frames = [source.evaluate(Query(promql, lower, upper, step, name=p.name)) for p, promql in asked]
        frames = [f for f in frames if not f.empty]
        if frames:
            by_key = {
                (f.attrs["series"][c].name, tuple(sorted(f.attrs["series"][c].labels.items()))): f[c]
                for f in frames
                for c in f.columns
            }
            frame = pd.concat(list(by_key.values()), axis=1, keys=range(len(by_key)), sort=True)
            by_key = dict(zip(by_key, frame.columns))
            seconds = frame.index.as_unit("ms").asi8 / 1e3
            columns = [
                frame[by_key[key]].to_numpy() if key in by_key else np.full(len(seconds), np.nan)
                for key in keys
            ]
            for i, t in enumerate(iso(seconds)):
                row = [_number(col[i]) for col in columns]
                if any(row):
                    yield _line([t, *row])
        chunk += 1


def panel_csv(source: Source, panel: Panel, window: Window, points: int) -> str:
    """Return a panel's data for a window as the page draws it: one column per series, unit in the header."""
    panel = resolve_unit(source, panel)
    frame = panel_frame(source, panel, window, points)
    if not frame.empty:
        frame = frame[frame.index >= pd.Timestamp(window.start, unit="s", tz="UTC")]
    return frame_csv(frame, panel.unit or "none")


def query_csv(source: Source, promql: str, start: float, end: float, step: float) -> str:
    """Return a PromQL range query as Explore draws it (the same steps), one column per series."""
    panel = query_panel(source, promql)
    return frame_csv(query_frame(source, panel.queries[0], start, end, step), panel.unit)


def frame_csv(frame: pd.DataFrame, unit: str) -> str:
    """Return a frame as CSV: ISO 8601 UTC time, one column per series with its unit in the header."""
    lines = [_line(["time"] + [f"{c} [{unit}]" for c in frame.columns])]
    seconds = frame.index.as_unit("ms").asi8 / 1e3 if len(frame) else np.zeros(0)
    values = frame.to_numpy(dtype=float) if len(frame) else np.zeros((0, 0))
    for t, row in zip(iso(seconds), values):
        lines.append(_line([t, *(_number(v) for v in row)]))
    return "".join(lines)


def dashboard_zip(source: Source, dashboard: Dashboard, window: Window, points: int) -> bytes:
    """Return a zip with one CSV per panel, named by panel id."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for panel in dashboard.panels:
            try:
                text = panel_csv(source, panel, window, points)
            except NotPermitted:
                continue  # a panel of metrics the reader may not see is left out of their zip
            archive.writestr(f"{dashboard.id}-{panel.id}.csv", text)
    return out.getvalue()
