"""The file pushed metrics' definitions are kept in: a JSON list, written atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from collectors.persistence import load_json, write_atomically
from collectors.registration import CATEGORY_LEVELS, MetricDefinition


def _definition(item: dict) -> MetricDefinition:
    item = {**item, "labels": tuple(item["labels"])}
    if "access" not in item:  # written before definitions had access levels: the category's
        item["access"] = CATEGORY_LEVELS.get(item.get("category", "custom"))
    return MetricDefinition(**item)


def load_definitions(path: Path | None, problems: list[str]) -> list[MetricDefinition]:
    """Read the definitions; a damaged file is set aside and noted in ``problems``."""
    return load_json(path, lambda items: [_definition(i) for i in items], problems) or []


def save_definitions(path: Path | None, definitions: Iterable[MetricDefinition]) -> None:
    """Write every definition (nothing without a path)."""
    if path is not None:
        write_atomically(path, json.dumps([d.as_dict() for d in definitions], indent=1))
