"""The dashboard schema: what a dashboard YAML file (or an API request) may say."""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from layouts.validation import Duration
from query.promql.shorthand import AGGREGATIONS, Compiled, ShorthandError, check, compile_query, is_selector
from tsdb.metrics import LABEL_NAME, UNIT_NAME, UNITS, AccessLevel, valid_unit
from tsdb.selector import SelectorError, parse_selector

CHART_TYPES = ("line", "area", "bar", "pie", "gauge", "stat", "table", "heatmap")
GRID_COLUMNS = 12
MAX_PANELS = 200  # panels one dashboard may hold (Node Exporter Full has 141): 5,000 take a browser minutes
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # matched whole: no trailing newline slips through

ChartType = Literal[CHART_TYPES]
Aggregation = Literal[AGGREGATIONS]
REFRESH_CHOICES = (0, 1, 5, 30)


def _whole_number_text(value):
    """Read "5" (from an environment variable or a form) as 5, so it can match a choice of numbers."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


# Seconds between refreshes (0: off), one of REFRESH_CHOICES.
Refresh = Annotated[Literal[REFRESH_CHOICES], BeforeValidator(_whole_number_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_NOT_IN_ID = re.compile(r"[^a-z0-9]+")
ID_LENGTH = 63


def id_for(text: str, taken: Container[str] = (), default: str = "panel") -> str:
    """An id made from a title (lowercase letters, digits and dashes) that ``taken`` does not hold:
    ``cpu-usage``, then ``cpu-usage-2``, ``cpu-usage-3``..."""
    base = _NOT_IN_ID.sub("-", text.lower()).strip("-")[:ID_LENGTH].strip("-") or default
    candidate, n = base, 2
    while candidate in taken:
        suffix = f"-{n}"
        candidate, n = base[: ID_LENGTH - len(suffix)].rstrip("-") + suffix, n + 1
    return candidate


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(
            "an id is 1-63 lowercase letters, digits and dashes, starting with a letter or digit"
        )
    return value


class PanelQuery(_Strict):
    """One query a panel draws: PromQL, or the shorthand of a series selector with an aggregation."""

    expr: str = Field(
        description="PromQL, e.g. sum by (mode) (rate(node_cpu_seconds_total[$__rate_interval])); or a "
        'series selector such as pulseboard_system_cpu_core_usage_ratio{core="0"} with agg, over, '
        "scale and smooth (compiled to PromQL when the dashboard loads)."
    )
    agg: Aggregation | None = Field(
        None, description="With a selector: each point's aggregation over its step (default avg)."
    )
    legend: str | None = Field(None, description="Legend template using labels, e.g. '{interface} in'.")
    over: str | None = Field(
        None,
        description="Divide by this selector (its series summed), with the same aggregation: "
        "conversions over sessions with agg rate is a conversion rate exact at any step.",
    )
    scale: float = Field(1.0, gt=0, description="Multiply values, e.g. 3600 for a per-second rate per hour.")
    smooth: Duration | None = Field(
        None,
        gt=0,
        description="The window each point covers instead of its step (rate(x[5m]) for agg rate): "
        "steady KPIs from sparse events.",
    )

    @field_validator("expr")
    @classmethod
    def _is_promql(cls, value: str) -> str:
        try:
            check(value)
        except ShorthandError as exc:
            reason = str(exc)
            if value.count("{") > value.count("}"):
                reason += " (a missing closing '}')"
            raise ValueError(reason) from None
        return value

    @field_validator("over")
    @classmethod
    def _over_selector(cls, value: str | None) -> str | None:
        if value is not None and not is_selector(value):
            raise ValueError("a series selector, e.g. pulseboard_business_sessions_total")
        return value

    @model_validator(mode="after")
    def _compiles(self):
        try:
            self.compiled  # noqa: B018 (compiled once here, kept by the cache)
        except ShorthandError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def compiled(self) -> Compiled:
        """This query as PromQL (the text drawn, a plain average's min/max band, the metrics read)."""
        return compile_query(self.expr, self.agg, self.over, self.scale, self.smooth)

    @property
    def metric(self) -> str | None:
        """The first metric the query reads (its unit is the panel's unless the panel says)."""
        names = self.compiled.metrics
        return names[0] if names else None


class Thresholds(_Strict):
    """Where a value turns amber and red; ``below`` for values where low is bad."""

    warn: float
    crit: float
    direction: Literal["above", "below"] = "above"

    @model_validator(mode="after")
    def _ordered(self):
        if (self.direction == "above" and self.crit < self.warn) or (
            self.direction == "below" and self.crit > self.warn
        ):
            raise ValueError(f"crit must be at or past warn in the direction {self.direction!r}")
        return self

    def level(self, value: float) -> str:
        """Return 'ok', 'warn' or 'crit' for a value."""
        sign = 1 if self.direction == "above" else -1
        if sign * value >= sign * self.crit:
            return "crit"
        if sign * value >= sign * self.warn:
            return "warn"
        return "ok"


class Grid(_Strict):
    """A panel's place on a 12-column grid: column x, row y, width w, height h (in rows)."""

    x: int = Field(0, ge=0, lt=GRID_COLUMNS)
    y: int = Field(0, ge=0)
    w: int = Field(6, ge=1, le=GRID_COLUMNS)
    h: int = Field(3, ge=1, le=12)

    @model_validator(mode="after")
    def _fits(self):
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"x + w is {self.x + self.w}; a row has {GRID_COLUMNS} columns")
        return self


class Panel(_Strict):
    """One chart on a dashboard."""

    id: str
    title: str = Field(min_length=1)
    type: ChartType
    queries: tuple[PanelQuery, ...] = Field(
        description="What the panel draws: at least one query, unless the panel only shows text ([])."
    )
    unit: str | None = Field(None, description="Defaults to the unit the first query's metric declares.")
    thresholds: Thresholds | None = None
    min: float | None = Field(None, description="Bottom of the value axis or a gauge's scale (default 0).")
    max: float | None = Field(
        None, description="Top of the value axis or a gauge's scale (default 100% for ratios)."
    )
    stack: bool = Field(False, description="Stack the series (line, area and bar).")
    several: Literal["each", "worst"] = Field(
        "each", description="A stat or gauge over several series: show each one, or only the worst."
    )
    text: str | None = Field(
        None, max_length=20_000, description="Text shown in the panel (Markdown); a panel may hold only text."
    )
    description: str = ""
    step: Duration | None = Field(
        None, gt=0, description="Smallest bucket, e.g. 1m so each percentile has enough observations."
    )
    anomalies: bool = Field(False, description="Mark points far from their rolling median (line and area).")
    grid: Grid = Grid()

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @model_validator(mode="after")
    def _draws_something(self):
        if not self.queries and self.text is None:
            raise ValueError("queries: a panel needs at least one query, or a text to show")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str | None) -> str | None:
        if value is not None and not valid_unit(value):
            raise ValueError(
                f"a unit is one of {', '.join(UNITS)} or another unit name such as celsius or joules "
                f"({UNIT_NAME.pattern})"
            )
        return value


VARIABLE_KINDS = ("label", "custom", "interval")


class Variable(_Strict):
    """A choice at the top of a dashboard: a label's value, or one of a list, put into panels' queries.

    A query names a variable as ``$name`` (or ``${name}``, ``[[name]]``); a label variable with
    ``narrow`` also keeps only its value in every query that does not name it.
    """

    name: str = Field(description="The label it sets (e.g. instance), or the name queries use ($name).")
    title: str | None = Field(None, description="What the page calls it; defaults to the name.")
    kind: Literal[VARIABLE_KINDS] = Field(
        "label", description="label: the values of a label; custom: a list; interval: a list of durations."
    )
    label: str | None = Field(None, description="The label whose values are offered; defaults to the name.")
    values_from: str | None = Field(
        None, description="Selector whose series list the values, e.g. pulseboard_system_cpu_usage_ratio."
    )
    regex: str | None = Field(
        None,
        max_length=512,
        description="Offer only label values this matches; with a group, the group's text (as Grafana).",
    )
    values: tuple[str, ...] = Field((), description="The choices of a custom or interval variable.")
    default: str | None = Field(None, description="The value chosen when the page names none.")
    narrow: bool = Field(
        True, description="A label variable: keep only the chosen value in queries that do not name it."
    )

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value or None

    def offered(self, values: list[str]) -> list[str]:
        """The choices among a label's values: those the regex matches (its group's text), sorted."""
        if self.kind != "label":
            return list(self.values)
        if not self.regex:
            return values
        pattern, out = re.compile(self.regex), []
        for value in values:
            m = (
                pattern.fullmatch(value) or pattern.search(value)
                if pattern.groups
                else pattern.fullmatch(value)
            )
            if m:
                out.append(m.group(1) if pattern.groups and m.group(1) is not None else value)
        return sorted(set(out))

    @property
    def listed_label(self) -> str:
        """The label whose values the page offers."""
        return self.label or self.name

    def value(self, chosen: str | None) -> str | None:
        """The value put into a query: the chosen one, else the default (None: every value)."""
        if chosen:
            return chosen
        if self.default:
            return self.default
        return self.values[0] if self.kind != "label" and self.values else None

    @model_validator(mode="after")
    def _listed(self):
        if self.kind != "label" and not self.values:
            raise ValueError(f"values: a {self.kind} variable lists its choices")
        return self

    @field_validator("name")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL_NAME.fullmatch(value) or value.startswith("__"):
            raise ValueError(f"a variable names a label: {LABEL_NAME.pattern}, not starting with __")
        return value

    @field_validator("label")
    @classmethod
    def _label_name(cls, value: str | None) -> str | None:
        if value is not None and not LABEL_NAME.fullmatch(value):
            raise ValueError(f"a label name: {LABEL_NAME.pattern}")
        return value

    @field_validator("values_from")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_selector(value)
            except SelectorError as exc:
                raise ValueError(str(exc)) from None
        return value


class Dashboard(_Strict):
    """A dashboard: its panels and how it refreshes."""

    id: str
    title: str = Field(min_length=1)
    access: AccessLevel
    description: str = ""
    refresh: Refresh | None = Field(None, description="Seconds; None uses the environment default.")
    variables: tuple[Variable, ...] = Field(
        (), description="Choices shown above the panels (e.g. instance), kept in the page's URL."
    )
    panels: tuple[Panel, ...] = Field(
        min_length=1, max_length=MAX_PANELS, description=f"At most {MAX_PANELS} panels: a page stays usable."
    )

    _id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @model_validator(mode="after")
    def _unique_panels(self):
        seen = set()
        for panel in self.panels:
            if panel.id in seen:
                raise ValueError(f"panel id {panel.id!r} is used twice")
            seen.add(panel.id)
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError("each variable names a different label")
        return self

    def chosen(self, values: dict) -> dict[str, str]:
        """Return the variables' values among request or URL parameters (empty means all)."""
        return {v.name: str(values[v.name]) for v in self.variables if values.get(v.name)}

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)

    def panel(self, panel_id: str) -> Panel:
        return next(p for p in self.panels if p.id == panel_id)
