"""The file pushed metrics' declarations are kept in: a JSON list, written atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ingest.registration import registration
from tsdb.metrics import CATEGORY_LEVELS, MetricSpec
from tsdb.persistence import load_json, write_atomically


def _declaration(item: dict) -> MetricSpec:
    category = item.get("category", "custom")
    # Written before declarations had access levels: the category's.
    level = item["access"] if "access" in item else CATEGORY_LEVELS.get(category)
    return MetricSpec(
        item["name"],
        item["type"],
        item.get("unit", "none"),
        item.get("help", ""),
        level,
        item["labels"],
        category,
    )


def load_definitions(path: Path | None, problems: list[str]) -> list[MetricSpec]:
    """Read the declarations; a damaged file is set aside and noted in ``problems``."""
    return load_json(path, lambda items: [_declaration(i) for i in items], problems) or []


def save_definitions(path: Path | None, definitions: Iterable[MetricSpec]) -> None:
    """Write every declaration (nothing without a path)."""
    if path is not None:
        write_atomically(path, json.dumps([registration(d) for d in definitions], indent=1))
