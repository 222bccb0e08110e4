"""The architecture holds in the code: request code reads metric data only through the caller's source,
and imports point downward (dashboard_app -> layouts -> collectors)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUEST_CODE = ["dashboard_app/api", "dashboard_app/pages", "dashboard_app/live", "dashboard_app/analysis"]
# What reads series out of the store or a source; request code calls these only on reads()'s views.
READS = {"latest", "series", "names", "read_raw", "read_rollup", "lookup", "last_value", "newest", "query"}
READS |= {"window", "label_values", "unit"}
UNBOUND = {"source", "api_source", "sources"}  # the runtime's sources before they are bound to a caller


def _modules(folders: list[str]) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).glob("*.py"))]


def _mentions_store(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name | ast.Attribute) and "store" in ast.unparse(n) for n in ast.walk(node))


def test_request_code_reads_no_metric_data_around_the_callers_source():
    found = []
    for path in _modules(REQUEST_CODE):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            unbound = isinstance(node, ast.Attribute) and node.attr in UNBOUND
            if unbound and ast.unparse(node.value) == "runtime":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: runtime.{node.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in READS
                and _mentions_store(node.func.value)
                and "dashboard_store" not in ast.unparse(node.func.value)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node.func)}")
    assert found == []


def test_imports_point_downward():
    rules = {"collectors": ("dashboard_app", "layouts"), "layouts": ("dashboard_app",)}
    found = []
    for package, forbidden in rules.items():
        for path in _modules([package]):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in forbidden:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module}")
    assert found == []


def test_the_packages_show_the_architecture():
    packages = {p.name for p in (ROOT / "dashboard_app").iterdir() if (p / "__init__.py").exists()}
    assert {"access", "api", "alerts", "analysis", "live", "pages", "sources"} <= packages
    for package in packages:
        init = (ROOT / "dashboard_app" / package / "__init__.py").read_text()
        assert init.startswith('"""'), f"{package} says what it holds"
