"""Load YAML files into pydantic models with errors that name the file, line and field."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError

M = TypeVar("M", bound=BaseModel)
MAX_VALUES = 100_000  # values a configuration file may hold with its aliases expanded (no alias bombs)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, line and field."""


def parse_duration(value: Any) -> float:
    """Return seconds from a number or a string such as ``500ms``, ``15s``, ``5m``, ``1h``, ``7d``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 15s, 5m, 1h, 7d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration: use seconds or a string like 15s, 5m, 1h, 7d")
        seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be more than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def format_duration(seconds: float) -> str:
    """Return the shortest exact form of a duration: 900 -> '15m'."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _expanded(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Return how many values a composed document holds once every alias is expanded (linear time:
    an alias is the node it names, counted once and then looked up)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_VALUES + 1  # a node inside itself (a recursive alias) expands forever
    if isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded(k, sizes) + _expanded(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded(item, sizes) for item in node.value)
    else:
        total = 1
    sizes[id(node)] = min(total, MAX_VALUES + 1)
    return sizes[id(node)]


def _lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path in a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _lines(value, path + (key.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, path + (i,), out)
    return out


class YamlProblem(ValueError):
    """A text that is not YAML Pulseboard reads: why, and where (1-based line and column) when known."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None):
        super().__init__(problem)
        self.problem, self.line, self.column = problem, line, column


def load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text whose aliases expand to at most MAX_VALUES values; return the data and its node."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded(node, {}) > MAX_VALUES:
            raise YamlProblem(f"its aliases expand to more than {MAX_VALUES:,} values; write the values out")
        return yaml.safe_load(text), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = str(getattr(exc, "problem", None) or exc)
        raise YamlProblem(
            problem, mark.line + 1 if mark else None, mark.column + 1 if mark else None
        ) from None


def yaml_place(problem: YamlProblem) -> str:
    """Where a YAML text goes wrong, as a message says it (" at line 2, column 7"), or nothing."""
    if problem.line is None:
        return ""
    return f" at line {problem.line}" + (f", column {problem.column}" if problem.column else "")


def read_yaml(path: Path) -> tuple[Any, dict[tuple, int]]:
    """Parse a YAML file; return the data and a map of key paths to lines."""
    try:
        data, node = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except YamlProblem as exc:
        if exc.line is None:
            raise ConfigError(f"{path}: {exc.problem}") from None
        raise ConfigError(f"{path}:{exc.line}: not valid YAML: {exc.problem}") from None
    return data, (_lines(node) if node is not None else {})


def describe(
    error: ValidationError,
    source: str,
    lines: dict[tuple, int],
    name_of: Callable[[tuple], tuple[str, str] | None] | None = None,
) -> str:
    """Render pydantic errors as ``file:line: field: message`` lines.

    ``name_of`` may rename a location: it returns (where, field) or None.
    """
    out = []
    errors = error.errors()
    inner = {tuple(e["loc"][:n]) for e in errors for n in range(len(e["loc"]))}
    for err in errors:
        if err["type"] == "too_short" and tuple(err["loc"]) in inner:
            continue  # "no items" only because its items are wrong: those errors say why
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        probe = loc
        while probe and probe not in lines:
            probe = probe[:-1]
        where = f"{source}:{lines[probe]}" if probe in lines else source
        field = ".".join(str(p) for p in loc) or "(top level)"
        named = name_of(loc) if name_of else None
        if named:
            where, field = named[0] or where, named[1]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        if err["type"] in ("literal_error", "enum") and "expected" in err.get("ctx", {}):
            message = f"must be one of {err['ctx']['expected']}"
        out.append(f"{where}: {field}: {message}")
    return "\n".join(out)


def load_model(
    model: type[M],
    data: Any,
    source: str,
    lines: dict[tuple, int] | None = None,
    name_of: Callable[[tuple], tuple[str, str] | None] | None = None,
) -> M:
    """Validate data into a model or raise ConfigError that names the source, line and field."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe(exc, source, lines or {}, name_of)) from None
