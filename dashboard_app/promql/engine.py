"""Evaluate a parsed PromQL expression at every step of a query, over the embedded store.

Expressions are parsed by ``promql-parser`` (the Prometheus grammar); this module walks the tree. A
query at one time is a range of one step. Functions and operators outside the supported list answer
bad_data naming them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import promql_parser as pp

from dashboard_app.promql import functions, operators, text
from dashboard_app.promql.selectors import Reader, matcher_sets, without_stale
from dashboard_app.promql.values import (
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
}
SUPPORTED = sorted(
    RANGE_FUNCTIONS | set(functions.ELEMENTWISE) | {"histogram_quantile", "time", "vector", "scalar"}
)


def parse(query: str):
    """Return the expression tree of a query; raise BadData with the parser's reason."""
    if not query.strip():
        raise BadData('invalid parameter "query": 1:1: parse error: no expression found in input')
    refused = text.check(query)
    if refused:
        raise BadData(f'invalid parameter "query": {refused}')
    try:
        return pp.parse(query)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadData(f'invalid parameter "query": {exc}') from None
    except BaseException as exc:  # the parser's native library panics on some input: refuse it, stay up
        if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        raise BadData(f'invalid parameter "query": the parser cannot read it ({exc})') from None


def _ms(delta) -> int:
    return 0 if delta is None else round(delta.total_seconds() * 1000)


def _op(token) -> str:
    return str(token)


@dataclass
class Evaluator:
    """Evaluate expressions at ``steps`` (int64 milliseconds) reading through ``reader``."""

    reader: Reader
    steps: np.ndarray

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

    # ----- leaves
    def _NumberLiteral(self, node) -> Scalar:
        return Scalar(np.full(len(self.steps), float(node.val)))

    def _StringLiteral(self, node) -> String:
        return String(node.val)

    def _ParenExpr(self, node) -> Value:
        return self.eval(node.expr)

    def _SubqueryExpr(self, node) -> Value:
        raise BadData("subqueries (expr[range:step]) are not supported")

    def _check_at(self, selector) -> None:
        if selector.at is not None:
            raise BadData("the @ modifier is not supported")

    def _VectorSelector(self, node) -> Vector:
        self._check_at(node)
        offset = _ms(node.offset)
        found = self.reader.select(matcher_sets(node))
        self.budget.spend(len(found) * len(self.steps))  # before the (series, steps) arrays are made
        steps = self.steps - offset
        labels, values, present = [], [], []
        for sid, lab in found:
            ts, val = self.reader.samples(sid, int(steps[0]) - LOOKBACK_MS, int(steps[-1]))
            if len(ts) == 0:
                continue
            idx = np.searchsorted(ts, steps, "right") - 1
            safe = np.maximum(idx, 0)
            ok = (idx >= 0) & (ts[safe] >= steps - LOOKBACK_MS)
            v = val[safe]
            ok &= v.view(np.uint64) != np.uint64(0x7FF0000000000002)  # a staleness marker: no value
            if ok.any():
                labels.append(lab)
                values.append(v)
                present.append(ok)
        if not labels:
            return Vector.empty(len(self.steps))
        return Vector(labels, np.array(values), np.array(present))

    def _MatrixSelector(self, node) -> Matrix:
        selector = node.vector_selector
        self._check_at(selector)
        offset, range_ms = _ms(selector.offset), _ms(node.range)
        labels, times, values = [], [], []
        for sid, lab in self.reader.select(matcher_sets(selector)):
            ts, val = self.reader.samples(
                sid, int(self.steps[0]) - offset - range_ms, int(self.steps[-1]) - offset
            )
            ts, val = without_stale(ts, val)
            if len(ts):
                labels.append(lab)
                times.append(ts)
                values.append(val)
        return Matrix(labels, times, values, range_ms, offset)

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
        param = None
        if op in ("topk", "bottomk", "quantile"):
            param = self._want_scalar(self.eval(node.param), op).values
        names, without = [], False
        if node.modifier is not None:
            names = list(node.modifier.labels)
            without = str(node.modifier.type).endswith("Without")
        return operators.aggregate(op, vector, names, without, param, self.budget.check)

    def _Call(self, node) -> Value:
        name = node.func.name
        args = node.args
        if name in RANGE_FUNCTIONS:
            return self._range_function(name, args)
        if name in functions.ELEMENTWISE:
            vector = self._want_vector(self.eval(args[0]), name)
            self.budget.spend(vector.values.size)
            params = [self._want_scalar(self.eval(a), name).values for a in args[1:]]
            values = functions.ELEMENTWISE[name](vector.values, *params)
            labels = [drop_name(lab) for lab in vector.labels]
            return Vector(labels, values, vector.present.copy()).relabel(labels)
        if name == "histogram_quantile":
            q = self._want_scalar(self.eval(args[0]), name).values
            return functions.histogram_quantile(q, self._want_vector(self.eval(args[1]), name))
        if name == "time":
            return Scalar(self.steps / 1000.0)
        if name == "vector":
            values = self._want_scalar(self.eval(args[0]), name).values
            return Vector([()], values[None, :].copy(), np.ones((1, len(self.steps)), dtype=bool))
        if name == "scalar":
            vector = self._want_vector(self.eval(args[0]), name)
            one = vector.present.sum(axis=0) == 1
            picked = (
                np.where(vector.present, vector.values, 0.0).sum(axis=0)
                if len(vector)
                else np.zeros(len(self.steps))
            )
            return Scalar(np.where(one, picked, np.nan))
        raise BadData(f"function {name}() is not supported (supported: {', '.join(SUPPORTED)})")

    def _range_function(self, name: str, args) -> Vector:
        matrix_arg = args[1] if name == "quantile_over_time" else args[0]
        matrix = self.eval(matrix_arg)
        if not isinstance(matrix, Matrix):
            raise BadData(f'expected type range vector in call to function "{name}", got {type_name(matrix)}')
        params = np.zeros(len(self.steps))
        if name == "quantile_over_time":
            params = self._want_scalar(self.eval(args[0]), name).values
        elif name == "predict_linear":
            params = self._want_scalar(self.eval(args[1]), name).values
        self.budget.spend(len(matrix.labels) * len(self.steps))  # the instant vector it makes
        labels, values, present = [], [], []
        for lab, ts, val in zip(matrix.labels, matrix.times, matrix.values):
            self.budget.check()
            where = (ts, val, self.steps, matrix.range_ms, matrix.offset_ms)
            if name in ("rate", "increase", "delta"):
                out, ok = functions.extrapolated(*where, counter=name != "delta", per_second=name == "rate")
            elif name in ("irate", "idelta"):
                out, ok = functions.instant_rate(*where, per_second=name == "irate")
            else:
                out, ok = functions.windowed(name, *where, params, self.budget.check)
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
