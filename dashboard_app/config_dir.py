"""Where Pulseboard's configuration lives: ``--config DIR``, else ``$PULSEBOARD_CONFIG``, else
``/etc/pulseboard`` when it exists, else the defaults shipped with Pulseboard.

A configuration directory holds any of ``<environment>.yaml`` (settings), ``dashboards/*.yaml`` and
``alerts/*.yaml`` (rules); what it leaves out comes from the shipped defaults, which have the same
layout (``pulseboard init DIR`` copies them).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from layouts.validation import ConfigError

SHIPPED = Path(__file__).resolve().parent / "defaults"
SYSTEM = Path("/etc/pulseboard")
ENV_VAR = "PULSEBOARD_CONFIG"


@dataclass(frozen=True)
class ConfigDir:
    """A configuration directory (None: the shipped defaults only)."""

    root: Path | None = None

    def _pick(self, name: str) -> Path:
        if self.root is not None and (self.root / name).exists():
            return self.root / name
        return SHIPPED / name

    def settings_file(self, environment: str) -> Path:
        return self._pick(f"{environment}.yaml")

    @property
    def dashboards(self) -> Path:
        return self._pick("dashboards")

    @property
    def alerts(self) -> Path:
        return self._pick("alerts")

    def describe(self) -> str:
        return str(self.root) if self.root is not None else f"the shipped defaults ({SHIPPED})"


def find_config(explicit: str | Path | None = None, environ: dict[str, str] | None = None) -> ConfigDir:
    """Return the configuration directory in force; raise ConfigError for one named but missing."""
    environ = os.environ if environ is None else environ
    named = explicit or environ.get(ENV_VAR)
    if named:
        root = Path(named)
        if not root.is_dir():
            where = "--config" if explicit else ENV_VAR
            raise ConfigError(f"{root}: {where}: no such configuration directory")
        return ConfigDir(root)
    if SYSTEM.is_dir():
        return ConfigDir(SYSTEM)
    return ConfigDir()


def write_starter(target: Path) -> list[Path]:
    """Write a starter configuration (the shipped defaults, with their comments) into ``target``.

    Nothing is overwritten: a file already there is a ConfigError naming it."""
    sources = sorted(p for p in SHIPPED.rglob("*.yaml"))
    wanted = [(p, target / p.relative_to(SHIPPED)) for p in sources]
    taken = [str(dest) for _, dest in wanted if dest.exists()]
    if taken:
        raise ConfigError(f"{taken[0]}: already exists; pulseboard init writes only into an empty place")
    for source, dest in wanted:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    return [dest for _, dest in wanted]
