"""Pushed metrics' declarations as JSON: the custom_metrics.json of earlier versions, and their rows."""

from __future__ import annotations

from pathlib import Path

from tsdb.metrics import CATEGORY_LEVELS, MetricSpec
from tsdb.persistence import load_json


def declaration(item: dict) -> MetricSpec:
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
    return load_json(path, lambda items: [declaration(i) for i in items], problems) or []
