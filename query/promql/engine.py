"""Evaluate a parsed PromQL expression at every step of a query, over the embedded store.

Expressions are parsed by ``promql-parser`` (the Prometheus grammar); this module walks the tree. A
query at one time is a range of one step. Functions and operators outside the supported list answer
bad_data naming them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import promql_parser as pp

from query.promql import functions, operators, text
from query.promql.selectors import Reader, matcher_sets, without_stale
from query.promql.values import (
    LOOKBACK_MS,
    BadData,
    Budget,
    Matrix,
    Scalar,
    String,
    Value,
    Vector,
    drop_name,
    type_name,
)

RANGE_FUNCTIONS = {
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "absent_over_time",
    "holt_winters",
    *functions.WINDOWED,
}
AGGREGATIONS = {
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
}
OTHER_FUNCTIONS = {
    "histogram_quantile",
    "time",
    "vector",
    "scalar",
    "timestamp",
    "absent",
    "label_replace",
    "label_join",
    "sort",
    "sort_desc",
    "pi",
    *functions.DATE_FUNCTIONS,
}
SUPPORTED = sorted(RANGE_FUNCTIONS | set(functions.ELEMENTWISE) | OTHER_FUNCTIONS)
SUBQUERY_STEP_MS = 60_000  # a subquery without a step evaluates every minute (Prometheus' default interval)
_HOLT_WINTERS = re.compile(r"\bholt_winters(\s*\()")


def parse(query: str):
    """Return the expression tree of a query; raise BadData with the parser's reason.

    Trees are never changed once made, so the texts pages ask again and again are parsed once."""
    if len(query) <= MAX_CACHED:
        return _parse_cached(query)
    return _parse(query)


MAX_CACHED = 2048  # characters of a query whose tree is kept


@lru_cache(maxsize=4096)
def _parse_cached(query: str):
    return _parse(query)


def _parse(query: str):
    if not query.strip():
        raise BadData('invalid parameter "query": 1:1: parse error: no expression found in input')
    refused = text.check(query)
    if refused:
        raise BadData(f'invalid parameter "query": {refused}')
    try:  # the parser knows Prometheus 2.42's holt_winters by its later name
        return pp.parse(_HOLT_WINTERS.sub(r"double_exponential_smoothing\1", query))
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadData(f'invalid parameter "query": {exc}') from None
    except BaseException as exc:  # the parser's native library panics on some input: refuse it, stay up
        if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        raise BadData(f'invalid parameter "query": the parser cannot read it ({exc})') from None


def _ms(delta) -> int:
    return 0 if delta is None else round(delta.total_seconds() * 1000)


def reach_ms(node) -> int:
    """Return how far before a step an expression reads samples (ms): an instant selector its lookback,
    a range its range, a subquery its range and its inner expression's reach, with their offsets."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        return LOOKBACK_MS + _ms(node.offset)
    if kind == "MatrixSelector":
        return _ms(node.range) + _ms(node.vector_selector.offset)
    if kind == "SubqueryExpr":
        return _ms(node.range) + _ms(node.offset) + reach_ms(node.expr)
    children = [getattr(node, name, None) for name in ("expr", "lhs", "rhs", "param")]
    children += list(getattr(node, "args", None) or ())
    return max((reach_ms(child) for child in children if child is not None and not _leaf(child)), default=0)


def _leaf(node) -> bool:
    return isinstance(node, str | int | float)


def _op(token) -> str:
    return str(token)


def _unwrap(node):
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    return node


@dataclass
class Evaluator:
    """Evaluate expressions at ``steps`` (int64 milliseconds) reading through ``reader``.

    ``start_ms`` and ``end_ms`` are the query's own range, which ``@ start()`` and ``@ end()`` name
    (inside a subquery too); they default to the first and last step.
    """

    reader: Reader
    steps: np.ndarray
    start_ms: int | None = None
    end_ms: int | None = None
    order: list[int] | None = field(default=None, init=False)  # the rows' order sort() chose

    def __post_init__(self) -> None:
        if self.start_ms is None:
            self.start_ms = int(self.steps[0])
        if self.end_ms is None:
            self.end_ms = int(self.steps[-1])

    def eval(self, node) -> Value:
        kind = type(node).__name__
        method = getattr(self, "_" + kind, None)
        if method is None:
            raise BadData(f"{kind} expressions are not supported")
        self.budget.check()
        value = method(node)
        if isinstance(value, Vector) and kind in ("BinaryExpr", "AggregateExpr", "UnaryExpr"):
            self.budget.spend(value.values.size)  # no larger than what it was made of, already counted
        return value

    @property
    def budget(self) -> Budget:
        return self.reader.budget

    def _times(self, node) -> np.ndarray:
        """When each step reads a selector or subquery: the step (or its ``@`` time) less the offset."""
        offset = _ms(node.offset)
        at = node.at
        if at is None:
            return self.steps - offset
        kind = str(at.type).rsplit(".", 1)[-1]
        if kind == "Start":
            fixed = self.start_ms
        elif kind == "End":
            fixed = self.end_ms
        else:
            fixed = round(at.at.timestamp() * 1000)
        return np.full(len(self.steps), fixed - offset, dtype=np.int64)

    # ----- leaves
    def _NumberLiteral(self, node) -> Scalar:
        return Scalar(np.full(len(self.steps), float(node.val)))

    def _StringLiteral(self, node) -> String:
        return String(node.val)

    def _ParenExpr(self, node) -> Value:
        return self.eval(node.expr)

    def _VectorSelector(self, node) -> Vector:
        return self._instant(node)[0]

    def _instant(self, node) -> tuple[Vector, np.ndarray]:
        """The selector's series at every step, and the time of the sample each step took (ms)."""
        times = self._times(node)
        found = self.reader.select(matcher_sets(node))
        self.budget.spend(len(found) * len(self.steps))  # before the (series, steps) arrays are made
        labels, values, present, taken = [], [], [], []
        for sid, lab in found:
            ts, val = self.reader.samples(sid, int(times.min()) - LOOKBACK_MS, int(times.max()))
            if len(ts) == 0:
                continue
            idx = np.searchsorted(ts, times, "right") - 1
            safe = np.maximum(idx, 0)
            ok = (idx >= 0) & (ts[safe] >= times - LOOKBACK_MS)
            v = val[safe]
            ok &= v.view(np.uint64) != np.uint64(0x7FF0000000000002)  # a staleness marker: no value
            if ok.any():
                labels.append(lab)
                values.append(v)
                present.append(ok)
                taken.append(ts[safe])
        if not labels:
            return Vector.empty(len(self.steps)), np.zeros((0, len(self.steps)), dtype=np.int64)
        return Vector(labels, np.array(values), np.array(present)), np.array(taken)

    def _MatrixSelector(self, node) -> Matrix:
        selector = node.vector_selector
        ends, range_ms = self._times(selector), _ms(node.range)
        labels, times, values = [], [], []
        for sid, lab in self.reader.select(matcher_sets(selector)):
            ts, val = self.reader.samples(sid, int(ends.min()) - range_ms, int(ends.max()))
            ts, val = without_stale(ts, val)
            if len(ts):
                labels.append(lab)
                times.append(ts)
                values.append(val)
        return Matrix(labels, times, values, range_ms, ends)

    def _SubqueryExpr(self, node) -> Matrix:
        """``expr[range:step]``: the expression evaluated every step (aligned to multiples of the step)."""
        ends, range_ms = self._times(node), _ms(node.range)
        step = _ms(node.step) or SUBQUERY_STEP_MS
        first, last = int(ends.min()) - range_ms, int(ends.max())
        start = step * (first // step)
        if start < first:
            start += step
        inner_steps = np.arange(start, last + 1, step, dtype=np.int64)
        if len(inner_steps) == 0:
            return Matrix([], [], [], range_ms, ends)
        self.budget.spend(len(inner_steps))
        inner = Evaluator(self.reader, inner_steps, self.start_ms, self.end_ms).eval(node.expr)
        if isinstance(inner, Scalar):
            inner = Vector([()], inner.values[None, :], np.ones((1, len(inner_steps)), dtype=bool))
        vector = self._want_vector(inner, "subquery")
        labels, times, values = [], [], []
        for lab, val, ok in zip(vector.labels, vector.values, vector.present):
            if ok.any():
                labels.append(lab)
                times.append(inner_steps[ok])
                values.append(val[ok])
        return Matrix(labels, times, values, range_ms, ends)

    # ----- operators
    def _UnaryExpr(self, node) -> Value:
        inner = self.eval(node.expr)
        if isinstance(inner, Scalar):
            return Scalar(-inner.values)
        vector = self._want_vector(inner, "unary -")
        labels = [drop_name(lab) for lab in vector.labels]
        return Vector(labels, -vector.values, vector.present).relabel(labels)

    def _BinaryExpr(self, node) -> Value:
        op = _op(node.op)
        left, right = self.eval(node.lhs), self.eval(node.rhs)
        modifier = node.modifier
        as_bool = bool(modifier and modifier.return_bool)
        for side in (left, right):
            if not isinstance(side, (Scalar, Vector)):
                raise BadData(
                    "binary expression must contain only scalar and instant vector types, "
                    f"not {type_name(side)}"
                )
        if op in operators.SET:
            if not (isinstance(left, Vector) and isinstance(right, Vector)):
                raise BadData(f"set operator {op} not allowed in binary scalar expression")
            on, names = self._matching(modifier)
            return operators.set_operation(op, left, right, on, names)
        if op not in operators.ARITHMETIC and op not in operators.COMPARISON:
            raise BadData(f"operator {op} is not supported")
        if isinstance(left, Scalar) and isinstance(right, Scalar):
            return operators.scalar_scalar(op, left, right, as_bool)
        if isinstance(right, Scalar):
            return operators.vector_scalar(op, left, right, True, as_bool)
        if isinstance(left, Scalar):
            return operators.vector_scalar(op, right, left, False, as_bool)
        on, names = self._matching(modifier)
        card, include = "one-to-one", []
        if modifier is not None:
            card = {
                "ManyToOne": "many-to-one",
                "OneToMany": "one-to-many",
            }.get(str(modifier.card).rsplit(".", 1)[-1], "one-to-one")
            include = list(modifier.group_labels or [])
        return operators.vector_vector(op, left, right, on, names, card, include, as_bool)

    @staticmethod
    def _matching(modifier) -> tuple[bool, list[str]]:
        if modifier is None or modifier.matching is None:
            return False, []
        on = str(modifier.matching.type).endswith("Include")
        return on, list(modifier.matching.labels)

    # ----- aggregations and functions
    def _AggregateExpr(self, node) -> Vector:
        op = _op(node.op)
        if op not in AGGREGATIONS:
            raise BadData(f"aggregation {op} is not supported (supported: {', '.join(sorted(AGGREGATIONS))})")
        vector = self._want_vector(self.eval(node.expr), op)
        names, without = [], False
        if node.modifier is not None:
            names = list(node.modifier.labels)
            without = str(node.modifier.type).endswith("Without")
        if op == "count_values":
            param = self.eval(node.param)
            if not isinstance(param, String):
                raise BadData(f"expected type string in aggregation count_values, got {type_name(param)}")
            return operators.count_values(param.value, vector, names, without)
        param = None
        if op in ("topk", "bottomk", "quantile"):
            param = self._want_scalar(self.eval(node.param), op).values
        return operators.aggregate(op, vector, names, without, param, self.budget.check)

    def _Call(self, node) -> Value:
        name = node.func.name
        if name == "double_exponential_smoothing":
            name = "holt_winters"
        args = [_unwrap(a) for a in node.args]
        if name in RANGE_FUNCTIONS:
            return self._range_function(name, args)
        if name in functions.ELEMENTWISE:
            vector = self._want_vector(self.eval(args[0]), name)
            self.budget.spend(vector.values.size)
            params = [self._want_scalar(self.eval(a), name).values for a in args[1:]]
            values = functions.ELEMENTWISE[name](vector.values, *params)
            present = vector.present.copy()
            if name == "clamp":  # a minimum above the maximum clamps to nothing
                present &= ~(params[0] > params[1])[None, :]
            labels = [drop_name(lab) for lab in vector.labels]
            return Vector(labels, values, present).relabel(labels)
        if name in functions.DATE_FUNCTIONS:
            return self._date(name, args)
        method = getattr(self, "_call_" + name, None)
        if method is None or name not in OTHER_FUNCTIONS:
            raise BadData(f"function {name}() is not supported (supported: {', '.join(SUPPORTED)})")
        return method(args)

    def _call_histogram_quantile(self, args) -> Vector:
        q = self._want_scalar(self.eval(args[0]), "histogram_quantile").values
        return functions.histogram_quantile(q, self._want_vector(self.eval(args[1]), "histogram_quantile"))

    def _call_time(self, args) -> Scalar:
        return Scalar(self.steps / 1000.0)

    def _call_pi(self, args) -> Scalar:
        return Scalar(np.full(len(self.steps), np.pi))

    def _call_vector(self, args) -> Vector:
        values = self._want_scalar(self.eval(args[0]), "vector").values
        return Vector([()], values[None, :].copy(), np.ones((1, len(self.steps)), dtype=bool))

    def _call_scalar(self, args) -> Scalar:
        vector = self._want_vector(self.eval(args[0]), "scalar")
        one = vector.present.sum(axis=0) == 1
        picked = (
            np.where(vector.present, vector.values, 0.0).sum(axis=0)
            if len(vector)
            else np.zeros(len(self.steps))
        )
        return Scalar(np.where(one, picked, np.nan))

    def _call_timestamp(self, args) -> Vector:
        """The time of each sample: a selector's own sample times, else the evaluation time."""
        if type(args[0]).__name__ == "VectorSelector":
            vector, taken = self._instant(args[0])
            values = taken / 1000.0
        else:
            vector = self._want_vector(self.eval(args[0]), "timestamp")
            values = np.broadcast_to(self.steps / 1000.0, vector.values.shape).copy()
        labels = [drop_name(lab) for lab in vector.labels]
        return Vector(labels, values, vector.present).relabel(labels)

    def _absent(self, present: np.ndarray, selector) -> Vector:
        """1 at every step where nothing is present, labelled by the selector's equality matchers."""
        labels: dict[str, str] = {}
        if selector is not None:
            dropped = set()
            for matcher in selector.matchers.matchers:
                if matcher.name == "__name__":
                    continue
                if str(matcher.op).endswith(".Equal") and matcher.name not in labels:
                    labels[matcher.name] = matcher.value
                else:
                    dropped.add(matcher.name)
            labels = {k: v for k, v in labels.items() if k not in dropped}
        missing = ~present
        if not missing.any():
            return Vector.empty(len(self.steps))
        return Vector([tuple(sorted(labels.items()))], np.ones((1, len(self.steps))), missing[None, :])

    def _call_absent(self, args) -> Vector:
        vector = self._want_vector(self.eval(args[0]), "absent")
        selector = args[0] if type(args[0]).__name__ == "VectorSelector" else None
        return self._absent(vector.present.any(axis=0), selector)

    def _call_label_replace(self, args) -> Vector:
        vector = self._want_vector(self.eval(args[0]), "label_replace")
        dst, replacement, src, pattern = (self._want_string(self.eval(a), "label_replace") for a in args[1:5])
        return functions.label_replace(vector, dst, replacement, src, pattern)

    def _call_label_join(self, args) -> Vector:
        vector = self._want_vector(self.eval(args[0]), "label_join")
        dst, separator, *sources = (self._want_string(self.eval(a), "label_join") for a in args[1:])
        return functions.label_join(vector, dst, separator, sources)

    def _call_sort(self, args, descending: bool = False) -> Vector:
        vector = self._want_vector(self.eval(args[0]), "sort")
        if len(self.steps) != 1 or not len(vector):  # the order matters to an instant query only
            return vector
        values = vector.values[:, 0]
        key = np.where(np.isnan(values), -np.inf, -values if descending else values)
        order = np.lexsort((key, ~np.isnan(values)))
        return vector.take(order)

    def _call_sort_desc(self, args) -> Vector:
        return self._call_sort(args, descending=True)

    def _date(self, name: str, args) -> Vector:
        if args:
            vector = self._want_vector(self.eval(args[0]), name)
        else:
            vector = Vector([()], (self.steps / 1000.0)[None, :], np.ones((1, len(self.steps)), dtype=bool))
        labels = [drop_name(lab) for lab in vector.labels]
        values = functions.calendar(name, vector.values)
        return Vector(labels, values, vector.present.copy()).relabel(labels)

    def _from_buckets(self, name: str, node) -> Vector | None:
        """``sum``, ``count``, ``avg``, ``min`` and ``max_over_time`` of a selector whose windows reach
        back past the raw tier, from the rollups' exact sums, counts, lows and highs (None: read raw)."""
        selector = node.vector_selector
        ends, range_ms = self._times(selector), _ms(node.range)
        start = int(ends.min()) - range_ms
        if start / 1000.0 >= self.reader.raw_from() or len(self.reader.store.tiers) < 2:
            return None
        labels, values, present = [], [], []
        for sid, lab in self.reader.select(matcher_sets(selector)):
            self.budget.check()
            b = self.reader.buckets(sid, start, int(ends.max()), range_ms)
            if not len(b.times):
                continue
            out, ok = functions.over_buckets(name, b, ends, range_ms)
            if ok.any():
                labels.append(drop_name(lab))
                values.append(out)
                present.append(ok)
        if not labels:
            return Vector.empty(len(self.steps))
        return Vector(labels, np.array(values), np.array(present)).relabel(labels)

    def _range_function(self, name: str, args) -> Vector:
        matrix_arg = args[1] if name == "quantile_over_time" else args[0]
        if name in functions.OVER_BUCKETS and type(matrix_arg).__name__ == "MatrixSelector":
            found = self._from_buckets(name, matrix_arg)
            if found is not None:
                return found
        matrix = self.eval(matrix_arg)
        if not isinstance(matrix, Matrix):
            raise BadData(f'expected type range vector in call to function "{name}", got {type_name(matrix)}')
        if name == "absent_over_time":
            seen = np.zeros(len(self.steps), dtype=bool)
            for ts in matrix.times:
                lo, hi = functions.windows(ts, matrix.ends, matrix.range_ms)
                seen |= hi > lo
            selector = matrix_arg.vector_selector if type(matrix_arg).__name__ == "MatrixSelector" else None
            return self._absent(seen, selector)
        params = np.zeros(len(self.steps))
        if name == "quantile_over_time":
            params = self._want_scalar(self.eval(args[0]), name).values
        elif name == "predict_linear":
            params = self._want_scalar(self.eval(args[1]), name).values
        elif name == "holt_winters":
            params = np.column_stack([self._want_scalar(self.eval(a), name).values for a in args[1:3]])
            functions.check_smoothing(params)
        self.budget.spend(len(matrix.labels) * len(self.steps))  # the instant vector it makes
        labels, values, present = [], [], []
        if name in ("rate", "increase", "delta"):  # every series at once
            out, ok = functions.extrapolated(
                matrix.times, matrix.values, matrix.ends, matrix.range_ms, name != "delta", name == "rate"
            )
            rows = np.flatnonzero(ok.any(axis=1))
            if not len(rows):
                return Vector.empty(len(self.steps))
            kept = [drop_name(matrix.labels[i]) for i in rows.tolist()]
            return Vector(kept, out[rows], ok[rows]).relabel(kept)
        for lab, ts, val in zip(matrix.labels, matrix.times, matrix.values):
            self.budget.check()
            where = (ts, val, matrix.ends, matrix.range_ms)
            if name in ("irate", "idelta"):
                out, ok = functions.instant_rate(*where, per_second=name == "irate")
            else:
                out, ok = functions.windowed(name, *where, self.steps, params, self.budget.check)
            if ok.any():
                labels.append(lab if name in functions.KEEPS_NAME else drop_name(lab))
                values.append(out)
                present.append(ok)
        if not labels:
            return Vector.empty(len(self.steps))
        return Vector(labels, np.array(values), np.array(present)).relabel(labels)

    # ----- types
    @staticmethod
    def _want_vector(value: Value, where: str) -> Vector:
        if not isinstance(value, Vector):
            raise BadData(f"expected type instant vector in {where}, got {type_name(value)}")
        return value

    @staticmethod
    def _want_scalar(value: Value, where: str) -> Scalar:
        if not isinstance(value, Scalar):
            raise BadData(f"expected type scalar in {where}, got {type_name(value)}")
        return value

    @staticmethod
    def _want_string(value: Value, where: str) -> str:
        if not isinstance(value, String):
            raise BadData(f"expected type string in {where}, got {type_name(value)}")
        return value.value
