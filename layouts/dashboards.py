"""Load dashboard YAML files into validated Dashboard objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layouts.schema import Dashboard
from layouts.validation import ConfigError, load_model, read_yaml
from tsdb.metrics import ACCESS_LEVELS

SHIPPED_ORDER = ACCESS_LEVELS  # the shipped dashboards, one a level, in this order


def _panel_namer(data: Any):
    """Name a location inside panels by the panel's id, as people read the file."""

    def name_of(loc: tuple) -> tuple[None, str] | None:
        if len(loc) >= 2 and loc[0] == "panels" and isinstance(loc[1], int):
            try:
                panel_id = data["panels"][loc[1]]["id"]
            except (KeyError, IndexError, TypeError):
                panel_id = None
            panel = f"panel {panel_id!r}" if panel_id else f"panel #{loc[1] + 1}"
            rest = ".".join(str(p) for p in loc[2:])
            return None, f"{panel}{' field ' + rest if rest else ''}"
        return None

    return name_of


def parse_dashboard(data: Any, source: str, lines: dict[tuple, int] | None = None) -> Dashboard:
    """Validate dashboard data; raise ConfigError naming the source, panel and field."""
    return load_model(Dashboard, data, source, lines, _panel_namer(data))


def load_dashboard(path: Path) -> Dashboard:
    """Load and validate one dashboard file."""
    data, lines = read_yaml(path)
    dashboard = parse_dashboard(data, str(path), lines)
    if dashboard.id != path.stem:
        raise ConfigError(
            f"{path}:{lines.get(('id',), 1)}: id: {dashboard.id!r} must match the file name {path.stem!r}"
        )
    return dashboard


def load_dashboards(directory: Path) -> dict[str, Dashboard]:
    """Load every *.yaml in a directory, shipped dashboards first in their menu order."""
    paths = sorted(directory.glob("*.yaml"), key=lambda p: (SHIPPED_ORDER + (p.stem,)).index(p.stem))
    if not paths:
        raise ConfigError(f"{directory}: no dashboard files (*.yaml)")
    return {d.id: d for d in map(load_dashboard, paths)}
