"""The dashboards a Pulseboard serves, as versioned documents: the shipped YAML files and those saved since.

A saved dashboard is one YAML file in the data directory (the schema the shipped files use). Every
save also keeps that version under ``.versions/<id>/<n>.yaml`` with a line in ``log.jsonl`` saying
who saved it and when, so any version can be read back and restored. A save names the version it
was made from; if another save came in between, it is refused (409) instead of overwriting it.
A shipped dashboard is version 0 of itself; an admin's saves stand in front of it until deleted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml

from dashboard_app.config_dir import ConfigDir
from layouts.dashboards import load_dashboard, load_dashboards, parse_dashboard, read_yaml
from layouts.schema import Dashboard
from tsdb.persistence import write_atomically

HISTORY = ".versions"
KEPT_VERSIONS = 100  # versions kept per dashboard; older ones are removed as new ones are saved


class DashboardError(ValueError):
    """A dashboard request that cannot be carried out; ``status`` answers it over HTTP."""

    def __init__(self, message: str, status: int = 400, field: str | None = None, **details):
        super().__init__(message)
        self.status = status
        self.field = field
        self.details = details


def document(dashboard: Dashboard) -> dict:
    """The dashboard as its file says it: id, title and access first, defaults left out."""
    data = dashboard.model_dump(mode="json", exclude_defaults=True)
    return {"id": dashboard.id, "title": dashboard.title, "access": dashboard.access, **data}


def parse_document(data: object) -> Dashboard:
    """Validate a dashboard definition with the one schema; DashboardError names what is wrong."""
    if not isinstance(data, dict):
        raise DashboardError("the body must be a dashboard object", field="body")
    try:
        return parse_dashboard(data, "dashboard")
    except ValueError as exc:
        raise DashboardError(str(exc).replace("\n", "; "), field="body") from None


class DashboardStore:
    """Keep dashboards by id with their versions; files in a directory, written atomically."""

    def __init__(self, directory: str | Path | None, shipped: dict[str, Dashboard] | None = None):
        self.shipped = dict(shipped if shipped is not None else load_dashboards(ConfigDir().dashboards))
        self.directory = Path(directory) if directory else None
        self._lock = threading.Lock()
        # One dict that readers use as is: it is replaced, never changed in place.
        self.dashboards: dict[str, Dashboard] = dict(self.shipped)
        self.problems: list[str] = []
        self._unsaved: dict[str, list[dict]] = {}  # versions' log without a directory (tests, dry runs)
        if self.directory and self.directory.is_dir():
            for path in sorted(self.directory.glob("*.yaml")):
                try:
                    dashboard = load_dashboard(path)
                except ValueError as exc:  # one damaged file: that dashboard is missing, not the server
                    self.problems.append(str(exc))
                    continue
                if dashboard.id in self.shipped and not self._log(dashboard.id):
                    continue  # a file beside a shipped id that no save wrote: the shipped one stands
                self.dashboards = {**self.dashboards, dashboard.id: dashboard}

    def get(self, dashboard_id: str) -> Dashboard | None:
        return self.dashboards.get(dashboard_id)

    def is_shipped(self, dashboard_id: str) -> bool:
        return dashboard_id in self.shipped

    def version(self, dashboard_id: str) -> int:
        """The current version of a dashboard: 0 shipped or never saved, then one more per save."""
        log = self._log(dashboard_id)
        return log[-1]["version"] if log else 0

    def versions(self, dashboard_id: str) -> list[dict]:
        """Every kept version, newest first: version, saved (Unix seconds), by, title, panels, action."""
        self._known(dashboard_id)
        log = list(reversed(self._log(dashboard_id)))
        if dashboard_id in self.shipped:
            d = self.shipped[dashboard_id]
            log.append(
                {
                    "version": 0,
                    "saved": None,
                    "by": "Pulseboard",
                    "title": d.title,
                    "panels": len(d.panels),
                    "action": "shipped",
                }
            )
        return log

    def at_version(self, dashboard_id: str, version: int) -> Dashboard:
        """A dashboard as it was at a version."""
        self._known(dashboard_id)
        if version == 0 and dashboard_id in self.shipped:
            return self.shipped[dashboard_id]
        path = self._history(dashboard_id) / f"{version}.yaml"
        if self.directory is None or not path.is_file():
            kept = ", ".join(str(v["version"]) for v in self.versions(dashboard_id)) or "none"
            raise DashboardError(f"{dashboard_id!r} has no version {version}; kept: {kept}", 404, "version")
        data, lines = read_yaml(path)
        return parse_dashboard(data, str(path), lines)

    def create(self, data: object, by: str = "api", action: str = "created") -> Dashboard:
        """Validate and store a new dashboard; 409 when the id is taken."""
        dashboard = parse_document(data)
        with self._lock:
            if dashboard.id in self.dashboards:
                raise DashboardError(
                    f"a dashboard {dashboard.id!r} exists; PUT to change it, or choose another id", 409, "id"
                )
            self._save(dashboard, by, action)
        return dashboard

    def update(
        self,
        dashboard_id: str,
        data: object,
        by: str = "api",
        base: int | None = None,
        may_change_shipped: bool = False,
        action: str = "saved",
    ) -> Dashboard:
        """Replace a dashboard with a new definition of the same id.

        ``base`` is the version the change was made from: if another save came since, 409.
        """
        dashboard = parse_document(data) if not isinstance(data, Dashboard) else data
        if dashboard.id != dashboard_id:
            raise DashboardError(
                f"id {dashboard.id!r} does not match the path's {dashboard_id!r}", field="id"
            )
        with self._lock:
            self._changeable(dashboard_id, may_change_shipped)
            current = self.version(dashboard_id)
            if base is not None and base != current:
                last = self._log(dashboard_id)[-1] if self._log(dashboard_id) else {}
                raise DashboardError(
                    f"{dashboard_id!r} was changed by {last.get('by', 'someone')} since you opened it "
                    f"(version {current}, yours is {base}); reload it to see their change, or save "
                    "yours under another id",
                    409,
                    "version",
                    version=current,
                    by=last.get("by"),
                )
            self._save(dashboard, by, action)
        return dashboard

    def restore(
        self,
        dashboard_id: str,
        version: int,
        by: str = "api",
        base: int | None = None,
        may_change_shipped: bool = False,
    ) -> Dashboard:
        """Save an earlier version again, as the newest."""
        old = self.at_version(dashboard_id, version)
        return self.update(dashboard_id, old, by, base, may_change_shipped, action=f"restored {version}")

    def delete(self, dashboard_id: str, may_change_shipped: bool = False) -> None:
        """Remove a saved dashboard and its file (its versions go too); a shipped one goes back to it."""
        with self._lock:
            self._changeable(dashboard_id, may_change_shipped)
            if dashboard_id in self.shipped and not self._log(dashboard_id):
                raise DashboardError(
                    f"{dashboard_id!r} ships with Pulseboard and cannot be deleted; "
                    "an admin's saved versions of it can be (it then goes back to as it shipped)",
                    403,
                    "id",
                )
            self._unsaved.pop(dashboard_id, None)
            if self.directory:
                (self.directory / f"{dashboard_id}.yaml").unlink(missing_ok=True)
                history = self._history(dashboard_id)
                if history.is_dir():
                    for path in history.iterdir():
                        path.unlink(missing_ok=True)
                    history.rmdir()
            if dashboard_id in self.shipped:
                self.dashboards = {**self.dashboards, dashboard_id: self.shipped[dashboard_id]}
            else:
                self.dashboards = {k: v for k, v in self.dashboards.items() if k != dashboard_id}

    def free_id(self, wanted: str) -> str:
        """An id like ``wanted`` that no dashboard has."""
        candidate, n = wanted, 2
        while candidate in self.dashboards:
            suffix = f"-{n}"
            candidate, n = wanted[: 63 - len(suffix)] + suffix, n + 1
        return candidate

    def _known(self, dashboard_id: str) -> None:
        if dashboard_id not in self.dashboards:
            known = ", ".join(self.dashboards)
            raise DashboardError(f"no dashboard {dashboard_id!r}; known: {known}", 404, "id")

    def _changeable(self, dashboard_id: str, may_change_shipped: bool) -> None:
        self._known(dashboard_id)
        if dashboard_id in self.shipped and not may_change_shipped:
            raise DashboardError(
                f"{dashboard_id!r} ships with Pulseboard and only an admin may change it; "
                "clone it to make your own",
                403,
                "id",
            )

    def _history(self, dashboard_id: str) -> Path:
        return (self.directory or Path(".")) / HISTORY / dashboard_id

    def _log(self, dashboard_id: str) -> list[dict]:
        if self.directory is None:
            return self._unsaved.get(dashboard_id, [])
        path = self._history(dashboard_id) / "log.jsonl"
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: the versions before it stand
            if isinstance(entry, dict) and isinstance(entry.get("version"), int):
                out.append(entry)
        return out

    def _save(self, dashboard: Dashboard, by: str, action: str) -> None:
        if self.directory is None:
            log = self._unsaved.setdefault(dashboard.id, [])
            version = (log[-1]["version"] if log else 0) + 1
            log.append(
                {
                    "version": version,
                    "saved": round(time.time(), 3),
                    "by": by,
                    "title": dashboard.title,
                    "panels": len(dashboard.panels),
                    "action": action,
                }
            )
        else:
            text = yaml.safe_dump(document(dashboard), sort_keys=False, allow_unicode=True)
            history = self._history(dashboard.id)
            history.mkdir(parents=True, exist_ok=True)
            log = self._log(dashboard.id)
            version = (log[-1]["version"] if log else 0) + 1
            write_atomically(history / f"{version}.yaml", text)
            write_atomically(self.directory / f"{dashboard.id}.yaml", text)
            entry = {
                "version": version,
                "saved": round(time.time(), 3),
                "by": by,
                "title": dashboard.title,
                "panels": len(dashboard.panels),
                "action": action,
            }
            kept = [*log, entry][-KEPT_VERSIONS:]
            for gone in log[: len(log) + 1 - len(kept)]:
                (history / f"{gone['version']}.yaml").unlink(missing_ok=True)
            write_atomically(history / "log.jsonl", "".join(json.dumps(e) + "\n" for e in kept))
        self.dashboards = {**self.dashboards, dashboard.id: dashboard}
