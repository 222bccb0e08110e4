"""Which access level a metric belongs to: declared with the metric, or by the settings' prefix table.

A metric whose level is not known is visible to admins only.
"""

from __future__ import annotations

from collections.abc import Mapping

from tsdb.metrics import MetricSpec

PARTS = ("_bucket", "_count", "_sum")  # a histogram's or summary's series share its level


class MetricLevels:
    """Answer a metric name's access level (None: unknown, admins only)."""

    def __init__(self, specs: Mapping[str, MetricSpec], prefixes: Mapping[str, str] | None = None):
        self.specs = specs
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))  # longest first

    def __call__(self, name: str) -> str | None:
        spec = self.specs.get(name)
        if spec is None:
            for part in PARTS:
                if name.endswith(part):
                    spec = self.specs.get(name[: -len(part)])
                    if spec is not None:
                        break
        if spec is not None and spec.level is not None:
            return spec.level
        return next((level for prefix, level in self.prefixes if name.startswith(prefix)), None)
