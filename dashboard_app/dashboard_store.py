"""The dashboards a Pulseboard serves: the shipped YAML files plus those made through the API."""

from __future__ import annotations

import threading
from pathlib import Path

import yaml

from dashboard_app.config_dir import ConfigDir
from layouts.dashboards import load_dashboard, load_dashboards, parse_dashboard
from layouts.schema import Dashboard
from tsdb.persistence import write_atomically


class DashboardError(ValueError):
    """A dashboard request that cannot be carried out; ``status`` answers it over HTTP."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


class DashboardStore:
    """Keep dashboards by id; user dashboards are YAML files in a directory, written atomically."""

    def __init__(self, directory: str | Path | None, shipped: dict[str, Dashboard] | None = None):
        self.shipped = dict(shipped if shipped is not None else load_dashboards(ConfigDir().dashboards))
        self.directory = Path(directory) if directory else None
        self._lock = threading.Lock()
        # One dict that readers use as is: it is replaced, never changed in place.
        self.dashboards: dict[str, Dashboard] = dict(self.shipped)
        self.problems: list[str] = []
        if self.directory and self.directory.is_dir():
            for path in sorted(self.directory.glob("*.yaml")):
                try:
                    dashboard = load_dashboard(path)
                except ValueError as exc:  # one damaged file: that dashboard is missing, not the server
                    self.problems.append(str(exc))
                    continue
                if dashboard.id not in self.shipped:
                    self.dashboards = {**self.dashboards, dashboard.id: dashboard}

    def get(self, dashboard_id: str) -> Dashboard | None:
        return self.dashboards.get(dashboard_id)

    def is_shipped(self, dashboard_id: str) -> bool:
        return dashboard_id in self.shipped

    def create(self, data: object) -> Dashboard:
        """Validate and store a new dashboard; 409 when the id is taken."""
        dashboard = self._parse(data)
        with self._lock:
            if dashboard.id in self.dashboards:
                raise DashboardError(f"a dashboard {dashboard.id!r} exists; PUT to change it", 409, "id")
            self._write(dashboard)
            self.dashboards = {**self.dashboards, dashboard.id: dashboard}
        return dashboard

    def update(self, dashboard_id: str, data: object) -> Dashboard:
        """Replace a user dashboard with a new definition of the same id."""
        dashboard = self._parse(data)
        if dashboard.id != dashboard_id:
            raise DashboardError(
                f"id {dashboard.id!r} does not match the path's {dashboard_id!r}", field="id"
            )
        with self._lock:
            self._changeable(dashboard_id)
            self._write(dashboard)
            self.dashboards = {**self.dashboards, dashboard.id: dashboard}
        return dashboard

    def delete(self, dashboard_id: str) -> None:
        """Remove a user dashboard and its file."""
        with self._lock:
            self._changeable(dashboard_id)
            if self.directory:
                (self.directory / f"{dashboard_id}.yaml").unlink(missing_ok=True)
            self.dashboards = {k: v for k, v in self.dashboards.items() if k != dashboard_id}

    def _changeable(self, dashboard_id: str) -> None:
        if dashboard_id not in self.dashboards:
            raise DashboardError(f"no dashboard {dashboard_id!r}", 404, "id")
        if dashboard_id in self.shipped:
            raise DashboardError(
                f"{dashboard_id!r} ships with Pulseboard and cannot be changed or deleted; "
                "create a copy under another id",
                403,
                "id",
            )

    def _parse(self, data: object) -> Dashboard:
        if not isinstance(data, dict):
            raise DashboardError("the body must be a dashboard object", field="body")
        try:
            return parse_dashboard(data, "dashboard")
        except ValueError as exc:
            raise DashboardError(str(exc).replace("\n", "; "), field="body") from None

    def _write(self, dashboard: Dashboard) -> None:
        if self.directory is None:
            return
        data = dashboard.model_dump(mode="json", exclude_defaults=True)
        data = {"id": dashboard.id, "title": dashboard.title, "access": dashboard.access, **data}
        write_atomically(self.directory / f"{dashboard.id}.yaml", yaml.safe_dump(data, sort_keys=False))
