"""``pulseboard check-config``: validate environment files, settings, dashboards and rules, and give
every problem found as ``file:line: key: reason`` rather than stopping at the first.

A path may be a configuration directory (its ``<environment>.yaml``, ``*.env``, ``dashboards/`` and
``alerts/``), a settings file (``development.yaml``, ``staging.yaml``, ``production.yaml``), an
environment file (``KEY=value`` lines, as systemd's ``EnvironmentFile=`` and compose's ``env_file``
read them), a dashboard file or a rules file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dashboard_app.access.secrets import load_secrets
from dashboard_app.alerts.rules import AlertRule, read_rules_file, rule_files, unknown_targets
from dashboard_app.config_dir import ConfigDir
from dashboard_app.settings import ENV_PREFIX, ENVIRONMENTS, load_settings
from layouts.dashboards import load_dashboard
from layouts.validation import ConfigError, read_yaml

_ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
SECRETS = ("PULSEBOARD_SECRET_KEY", "PULSEBOARD_ADMIN_PASSWORD")
NOT_CHECKED_HERE = ("PULSEBOARD_ENV", "PULSEBOARD_DATA_DIR", "PULSEBOARD_CONFIG", "PULSEBOARD_SECRETS_FILE")


@dataclass
class Report:
    """What a check found: the files read and every problem, each a line."""

    checked: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not wrong

    def add(self, path: Path, problems: list[str] | str | None) -> None:
        self.checked.append(path)
        if isinstance(problems, str):
            problems = problems.splitlines()
        self.errors += problems or []


def read_env_file(path: Path) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """Read ``KEY=value`` lines (``#`` comments, blank lines, ``export``, single or double quotes);
    return each variable's value and line, and an error for each line that is not one."""
    values: dict[str, tuple[str, int]] = {}
    errors: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"]
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = _ASSIGNMENT.match(stripped)
        if not found:
            errors.append(f"{path}:{number}: {stripped.split('=')[0].strip()}: not a NAME=value line")
            continue
        name, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()  # an unquoted value ends where a comment starts
        values[name] = (value, number)
    return values, errors


def check_environment(
    values: dict[str, tuple[str, int]], source: str, environment: str, config: ConfigDir
) -> list[str]:
    """Check each PULSEBOARD_ variable on its own, so every bad one is reported with its line."""
    errors = []
    ours = {name: v for name, v in values.items() if name.startswith(ENV_PREFIX)}
    if "PULSEBOARD_ENV" in ours:
        value, line = ours["PULSEBOARD_ENV"]
        if value in ENVIRONMENTS:
            environment = value
        else:
            errors.append(
                f"{source}:{line}: PULSEBOARD_ENV: {value!r} is not one of {', '.join(ENVIRONMENTS)}"
            )
    settings = {
        name: v
        for name, v in ours.items()
        if name.removesuffix("_FILE") not in SECRETS and name not in NOT_CHECKED_HERE
    }
    good = {}
    for name, (value, line) in sorted(settings.items(), key=lambda item: item[1][1]):
        try:  # each variable on its own first, so every bad one is named with its line
            load_settings(environment, {name: value}, config)
            good[name] = value
        except ConfigError as exc:
            own = [p for p in str(exc).splitlines() if name in p]
            if not own:  # it needs another setting (a URL, a user): judged with the others below
                good[name] = value
            errors += [f"{source}:{line}: {p.removeprefix('environment: ')}" for p in own]
    if good:
        try:  # then together: a setting that needs another (source: prometheus needs its URL)
            load_settings(environment, good, config)
        except ConfigError as exc:
            first = min(settings[name][1] for name in good)
            errors += [f"{source}:{first}: {p.removeprefix('environment: ')}" for p in str(exc).splitlines()]
    given = [name for name in SECRETS if name in ours or f"{name}_FILE" in ours]
    if given:
        secrets = {name: ours[name][0] for name in ours if name.removesuffix("_FILE") in SECRETS}
        try:
            load_secrets(secrets)
        except ConfigError as exc:
            named = next((n for n in ours if str(exc).startswith(n)), given[0])
            errors.append(f"{source}:{ours.get(named, (None, 1))[1]}: {exc}")
    return errors


def check_database(url: str | None) -> list[str]:
    """A database.url that is not one, or whose server cannot be reached or refuses the login (the default,
    SQLite in the data directory, is made at the first start)."""
    if not url:
        return []
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard_app.state.database import DatabaseError, database_url

    try:
        resolved = database_url(url, Path("."))
        connect = {"connect_timeout": 5} if resolved.startswith("postgresql") else {}
        engine = create_engine(resolved, connect_args=connect)
        try:
            with engine.connect() as db:
                db.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except DatabaseError as exc:
        return [str(exc)]
    except (SQLAlchemyError, ImportError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [f"database.url: cannot open {_without_password(url)}: {reason}"]
    return []


def _without_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _kind(path: Path) -> str:
    if path.is_dir():
        return "directory"
    if path.suffix not in (".yaml", ".yml"):
        return "environment"
    if path.stem in ENVIRONMENTS:
        return "settings"
    if path.parent.name == "dashboards":
        return "dashboard"
    if path.parent.name == "alerts":
        return "rules"
    try:
        data, _ = read_yaml(path)
    except ConfigError:
        return "unknown"
    if isinstance(data, dict) and "rules" in data:
        return "rules"
    if isinstance(data, dict) and "panels" in data:
        return "dashboard"
    return "unknown"


def _unknown_targets(
    path: Path, rules: list[AlertRule], environment: str, config: ConfigDir, environ: dict[str, str]
) -> list[str]:
    """A rule's ``notify:`` names that ``alerts.notify`` has no target of (as start-up refuses them)."""
    try:
        names = [t.name for t in load_settings(environment, environ, config).alerts.targets()]
    except ConfigError:
        return []  # the settings' own errors are reported with them
    _, lines = read_yaml(path)
    where = {item.id: lines.get(("rules", i, "notify"), 1) for i, item in enumerate(rules)}
    return [
        f"{path}:{where[rule.id]}: rule {rule.id!r}: {reason}"
        for rule in rules
        for reason in unknown_targets(rule, names)
    ]


def _check_file(
    path: Path, kind: str, environment: str, config: ConfigDir, report: Report, environ: dict | None = None
) -> None:
    environ = environ or {}
    if kind == "environment":
        values, errors = read_env_file(path)
        report.add(path, errors + check_environment(values, str(path), environment, config))
    elif kind == "settings":
        here = ConfigDir(path.parent)
        try:
            load_settings(path.stem, {}, here)
            report.add(path, None)
        except ConfigError as exc:
            report.add(path, str(exc))
    elif kind == "dashboard":
        try:
            load_dashboard(path)
            report.add(path, None)
        except ConfigError as exc:
            report.add(path, str(exc))
    elif kind == "rules":
        try:
            rules, errors = read_rules_file(path)
            report.add(path, errors + _unknown_targets(path, rules, environment, config, environ))
        except ConfigError as exc:
            report.add(path, str(exc))
    else:
        report.add(path, f"{path}:1: not a settings, environment, dashboard or rules file")


def _check_directory(root: Path, environment: str, report: Report) -> None:
    config = ConfigDir(root)
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix in (".yaml", ".yml") and path.stem in ENVIRONMENTS:
            _check_file(path, "settings", path.stem, config, report)
        elif path.is_file() and (path.suffix == ".env" or path.name == "environment"):
            _check_file(path, "environment", environment, config, report)
    for path in sorted(config.dashboards.glob("*.yaml")):
        _check_file(path, "dashboard", environment, config, report)
    for path in rule_files(config.alerts):
        _check_file(path, "rules", environment, config, report)


def check(paths: list[Path], environment: str, config: ConfigDir, environ: dict[str, str]) -> Report:
    """Check the paths given, or with none the configuration in force and this process's environment."""
    report = Report()
    if not paths:
        _check_file(config.settings_file(environment), "settings", environment, config, report)
        for kind, paths_of in (
            ("dashboard", config.dashboards.glob("*.yaml")),
            ("rules", rule_files(config.alerts)),
        ):
            for path in sorted(paths_of):
                _check_file(path, kind, environment, config, report, environ)
        values = {name: (value, 0) for name, value in environ.items()}
        errors = check_environment(values, "environment", environment, config)
        report.errors += [e.replace("environment:0: ", "environment: ", 1) for e in errors]
        if not errors:
            settings = load_settings(environment, environ, config)
            report.errors += check_database(settings.database.url)
            if settings.source == "prometheus" and not settings.database.url:
                report.notes.append(
                    "database.url: not set, so this replica keeps users, dashboards, rules and alert state "
                    "in its own data directory; replicas share them only through one database.url "
                    "(PostgreSQL), and each would evaluate and notify alerts on its own"
                )
        return report
    for path in paths:
        if not path.exists():
            report.add(path, f"{path}: no such file or directory")
        elif path.is_dir():
            _check_directory(path, environment, report)
        else:
            _check_file(path, _kind(path), environment, config, report)
    return report
