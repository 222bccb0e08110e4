"""PromQL's aggregations and binary operators over instant vectors at every step, as Prometheus has them.

Aggregations group by the labels ``by`` keeps (or all but those ``without`` names, and the metric name).
Between two vectors, series are matched one to one on their labels (``on``/``ignoring``), or many to one
with ``group_left``/``group_right``; comparisons filter unless ``bool``; ``and``, ``or`` and ``unless`` are
set operations. Arithmetic drops the metric name.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable

import numpy as np

from query.promql.functions import quantile
from query.promql.values import NAME, BadData, Execution, Labels, Scalar, Vector, drop_name, number
from tsdb.metrics import LABEL_NAME

ARITHMETIC = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "atan2": np.arctan2,
}
COMPARISON = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
SET = ("and", "or", "unless")
DROPS_NAME = set(ARITHMETIC) - {"atan2"}  # Prometheus keeps the metric name through atan2


def grouping(labels: Labels, names: list[str], without: bool) -> Labels:
    if without:
        drop = {*names, NAME}
        return tuple(p for p in labels if p[0] not in drop)
    keep = set(names)
    return tuple(p for p in labels if p[0] in keep)


def aggregate(
    op: str,
    vector: Vector,
    names: list[str],
    without: bool,
    param: np.ndarray | None,
    check: Callable[[], None] = lambda: None,
) -> Vector:
    """``sum``, ``avg``, ``min``, ``max``, ``count``, ``group``, ``stddev``, ``stdvar``, ``topk``,
    ``bottomk`` and ``quantile`` at every step (``check`` raises when the query must stop)."""
    steps = vector.values.shape[1]
    if not len(vector):
        return Vector.empty(steps)
    groups: dict[Labels, list[int]] = {}
    for i, labels in enumerate(vector.labels):
        groups.setdefault(grouping(labels, names, without), []).append(i)
    if op in ("topk", "bottomk"):
        return _top(op, vector, list(groups.values()), param, check)
    keys, values, present = [], [], []
    for key, rows in groups.items():
        here = vector.present[rows]
        v = np.where(here, vector.values[rows], np.nan)
        count = here.sum(axis=0)
        ok = count > 0
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if op == "sum":
                out = np.where(here, vector.values[rows], 0.0).sum(axis=0)
            elif op == "avg":
                out = np.where(here, vector.values[rows], 0.0).sum(axis=0) / count
            elif op == "count":
                out = count.astype(np.float64)
            elif op == "group":
                out = np.ones(steps)
            elif op in ("min", "max"):
                pick = np.nanmin if op == "min" else np.nanmax
                out = pick(v, axis=0)  # a NaN counts only when every value is NaN
            elif op in ("stddev", "stdvar"):
                mean = np.where(here, vector.values[rows], 0.0).sum(axis=0) / count
                var = np.where(here, (vector.values[rows] - mean) ** 2, 0.0).sum(axis=0) / count
                out = np.sqrt(var) if op == "stddev" else var
            elif op == "quantile":
                out = np.array(
                    [quantile(float(param[s]), v[:, s][here[:, s]]) if ok[s] else 0.0 for s in range(steps)]
                )
            else:
                raise Execution(f"aggregation {op} is not supported")
        keys.append(key)
        values.append(out)
        present.append(ok)
    return Vector(keys, np.array(values), np.array(present))


def count_values(name: str, vector: Vector, names: list[str], without: bool) -> Vector:
    """``count_values("name", v)``: how many series have each value, the value in label ``name``."""
    if not LABEL_NAME.fullmatch(name):
        raise BadData(f'invalid label name "{name}"')
    steps = vector.values.shape[1]
    counts: dict[Labels, np.ndarray] = {}
    for i, labels in enumerate(vector.labels):
        base = dict(grouping(labels, names, without))
        for s in np.flatnonzero(vector.present[i]).tolist():
            key = tuple(sorted({**base, name: number(float(vector.values[i, s]))}.items()))
            counts.setdefault(key, np.zeros(steps))[s] += 1
    if not counts:
        return Vector.empty(steps)
    values = np.array(list(counts.values()))
    return Vector(list(counts), values, values > 0)


def _top(op: str, vector: Vector, groups: list[list[int]], param: np.ndarray, check) -> Vector:
    present = np.zeros_like(vector.present)
    for s in range(vector.values.shape[1]):
        check()
        k = param[s]
        if math.isnan(k):
            raise Execution("Parameter value is NaN")
        if k < 1:  # -Inf too
            continue
        k = int(min(k, len(vector)))  # more than there are series (Inf too) takes them all
        for rows in groups:
            candidates = [i for i in rows if vector.present[i, s]]
            if not candidates:
                continue
            values = vector.values[candidates, s]
            key = np.where(np.isnan(values), -np.inf if op == "topk" else np.inf, values)
            order = np.argsort(-key if op == "topk" else key, kind="stable")[:k]
            present[np.asarray(candidates)[order], s] = True
    keep = present.any(axis=1)
    return Vector([lab for lab, ok in zip(vector.labels, keep) if ok], vector.values[keep], present[keep])


def _apply(op: str, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, kept) of an operator applied element by element; arithmetic keeps every one."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if op in ARITHMETIC:
            out = ARITHMETIC[op](left, right)
            return out, np.ones(np.shape(out), dtype=bool)
        kept = COMPARISON[op](left, right)
        return np.broadcast_to(left, np.shape(kept)).astype(np.float64), kept


def scalar_scalar(op: str, left: Scalar, right: Scalar, as_bool: bool) -> Scalar:
    out, kept = _apply(op, left.values, right.values)
    return Scalar(kept.astype(np.float64) if op in COMPARISON else out)


def vector_scalar(op: str, vector: Vector, scalar: Scalar, vector_left: bool, as_bool: bool) -> Vector:
    """An operator between each series and a number."""
    left, right = (vector.values, scalar.values) if vector_left else (scalar.values, vector.values)
    out, kept = _apply(op, left, right)
    if op in COMPARISON:
        out = np.array(vector.values, dtype=np.float64)  # a comparison keeps the vector's value
        if as_bool:
            out, kept = kept.astype(np.float64), np.ones_like(kept)
    if op in DROPS_NAME or as_bool:
        labels = [drop_name(lab) for lab in vector.labels]
        return Vector(labels, out, vector.present & kept).relabel(labels)
    return Vector(vector.labels, out, vector.present & kept)


def _signature(labels: Labels, on: bool, names: list[str]) -> Labels:
    if on:
        keep = set(names)
        return tuple(p for p in labels if p[0] in keep)
    drop = {*names, NAME}
    return tuple(p for p in labels if p[0] not in drop)


def set_operation(op: str, left: Vector, right: Vector, on: bool, names: list[str]) -> Vector:
    """``and``, ``or`` and ``unless``: by label sets, step by step."""
    steps = left.values.shape[1]
    right_sigs: dict[Labels, np.ndarray] = {}
    for labels, here in zip(right.labels, right.present):
        sig = _signature(labels, on, names)
        right_sigs[sig] = right_sigs.get(sig, np.zeros(steps, dtype=bool)) | here
    if op in ("and", "unless"):
        present = left.present.copy()
        for i, labels in enumerate(left.labels):
            there = right_sigs.get(_signature(labels, on, names), np.zeros(steps, dtype=bool))
            present[i] &= there if op == "and" else ~there
        return Vector(left.labels, left.values, present)
    left_sigs: dict[Labels, np.ndarray] = {}
    for labels, here in zip(left.labels, left.present):
        sig = _signature(labels, on, names)
        left_sigs[sig] = left_sigs.get(sig, np.zeros(steps, dtype=bool)) | here
    extra_present = np.array(
        [
            here & ~left_sigs.get(_signature(labels, on, names), np.zeros(steps, dtype=bool))
            for labels, here in zip(right.labels, right.present)
        ],
        dtype=bool,
    ).reshape(len(right), steps)
    return Vector(
        left.labels + right.labels,
        np.concatenate([left.values, right.values]),
        np.concatenate([left.present, extra_present]),
    )


def vector_vector(
    op: str,
    left: Vector,
    right: Vector,
    on: bool,
    names: list[str],
    card: str,
    include: list[str],
    as_bool: bool,
) -> Vector:
    """An arithmetic or comparison operator between matched series of two vectors."""
    steps = left.values.shape[1]
    swapped = card == "one-to-many"
    many, one = (right, left) if swapped else (left, right)
    one_by_sig: dict[Labels, list[int]] = {}
    for j, labels in enumerate(one.labels):
        one_by_sig.setdefault(_signature(labels, on, names), []).append(j)
    _unique_per_step(one, one_by_sig, "right" if not swapped else "left", card)
    if card == "one-to-one":
        many_by_sig: dict[Labels, list[int]] = {}
        for i, labels in enumerate(many.labels):
            many_by_sig.setdefault(_signature(labels, on, names), []).append(i)
        _unique_per_step(many, many_by_sig, "left", card)
    out_labels, out_values, out_present = [], [], []
    for i, labels in enumerate(many.labels):
        for j in one_by_sig.get(_signature(labels, on, names), []):
            both = many.present[i] & one.present[j]
            if not both.any():
                continue
            lv, rv = (one.values[j], many.values[i]) if swapped else (many.values[i], one.values[j])
            values, kept = _apply(op, lv, rv)
            if op in COMPARISON and as_bool:
                values, kept = kept.astype(np.float64), np.ones(steps, dtype=bool)
            out_labels.append(_result_labels(labels, one.labels[j], op, on, names, card, include, as_bool))
            out_values.append(values)
            out_present.append(both & kept)
    if not out_labels:
        return Vector.empty(steps)
    result = Vector(out_labels, np.array(out_values), np.array(out_present))
    if card != "one-to-one":
        groups: dict[Labels, list[int]] = {}
        for k, lab in enumerate(out_labels):
            groups.setdefault(lab, []).append(k)
        for rows in groups.values():
            if len(rows) > 1 and (result.present[rows].sum(axis=0) > 1).any():
                raise Execution("multiple matches for labels: grouping labels must ensure unique matches")
    return result.relabel(out_labels)


def _unique_per_step(vector: Vector, by_sig: dict[Labels, list[int]], side: str, card: str) -> None:
    for sig, rows in by_sig.items():
        if len(rows) > 1 and (vector.present[rows].sum(axis=0) > 1).any():
            shown = "{" + ", ".join(f'{k}="{v}"' for k, v in sig) + "}"
            if card == "one-to-one" and side == "left":
                raise Execution(
                    f"found duplicate series for the match group {shown} on the left hand-side of the "
                    "operation; many-to-one matching must be explicit (group_left/group_right)"
                )
            raise Execution(
                f"found duplicate series for the match group {shown} on the {side} hand-side of the "
                "operation; many-to-many matching not allowed: matching labels must be unique on one side"
            )


def _result_labels(
    many: Labels,
    one: Labels,
    op: str,
    on: bool,
    names: list[str],
    card: str,
    include: list[str],
    as_bool: bool,
) -> Labels:
    labels = dict(many)
    if op in DROPS_NAME or as_bool:
        labels.pop(NAME, None)
    if card == "one-to-one":
        if on:
            labels = {k: v for k, v in labels.items() if k in set(names)}
        else:
            for name in names:
                labels.pop(name, None)
    else:
        theirs = dict(one)
        for name in include:
            if theirs.get(name):
                labels[name] = theirs[name]
            else:
                labels.pop(name, None)
    return tuple(sorted(labels.items()))
