"""Partial updates: the Dash patch operations that turn the figure a viewer holds into the newest one.

A refresh of a live chart mostly moves its window: a bucket or two leave on the left, one or two
arrive on the right and the newest, partial one changes. Sending those as operations (Dash's
``Patch`` wire format) instead of the whole figure keeps a refresh to a few hundred bytes. The
operations are checked by applying them to the old figure here, so a patch that would not give
exactly the new figure is never sent.
"""

from __future__ import annotations

from typing import Any

import orjson

MARK = "__dash_patch_update"
MOST_DELETES = 24  # past this many points leaving the left edge, the whole array is sent instead


def figure_patch(old: Any, new: Any) -> bytes | None:
    """Return a serialised Dash patch turning figure ``old`` into ``new`` (both plain JSON values).

    None when the figures differ in shape (another trace count, a new chart).
    """
    if not (isinstance(old, dict) and isinstance(new, dict)) or set(old) != set(new):
        return None
    old_data, new_data = old.get("data"), new.get("data")
    if not (isinstance(old_data, list) and isinstance(new_data, list)) or len(old_data) != len(new_data):
        return None
    ops: list[dict] = []
    for i, (a, b) in enumerate(zip(old_data, new_data)):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return None
        _trace(ops, ["data", i], a, b)
    for key in new:
        if key != "data":
            _tree(ops, [key], old[key], new[key])
    if apply_patch(old, ops) != new:
        return None  # safety net: send the whole figure rather than a wrong one
    return orjson.dumps({MARK: MARK, "operations": ops})


def _trace(ops: list[dict], at: list, old: dict, new: dict) -> None:
    """Add the operations for one trace: its per-point arrays shifted, everything else replaced."""
    ox, nx = old.get("x"), new.get("x")
    shift = _shift(ox, nx) if isinstance(ox, list) and isinstance(nx, list) else None
    for key in old.keys() - new.keys():
        ops.append(_op("Delete", [*at, key]))
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if before == value:
            continue
        if shift is not None and _per_point(before, value, ox, nx):
            _shift_array(ops, [*at, key], before, value, shift)
        elif shift is not None and key == "z" and _rows_per_point(before, value, ox, nx):
            for r, (row_old, row_new) in enumerate(zip(before, value)):
                if row_old != row_new:
                    _shift_array(ops, [*at, key, r], row_old, row_new, shift)
        else:
            ops.append(_op("Assign", [*at, key], value=value))


def _tree(ops: list[dict], at: list, old: Any, new: Any) -> None:
    """Add the operations that make a layout value ``new``: into dicts key by key, else replaced."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() - new.keys():
            ops.append(_op("Delete", [*at, key]))
        for key, value in new.items():
            _tree(ops, [*at, key], old.get(key, _MISSING), value)
        return
    ops.append(_op("Assign", at, value=new))


def _shift(old_x: list, new_x: list) -> int | None:
    """Return how many points left the start when ``new_x`` continues ``old_x``, else None."""
    if not new_x:
        return None
    try:
        k = old_x.index(new_x[0])
    except ValueError:
        return None
    m = len(old_x) - k
    if m > len(new_x) or old_x[k:] != new_x[:m]:
        return None
    return k


def _per_point(old: Any, new: Any, old_x: list, new_x: list) -> bool:
    return (
        isinstance(old, list) and isinstance(new, list) and len(old) == len(old_x) and len(new) == len(new_x)
    )


def _rows_per_point(old: Any, new: Any, old_x: list, new_x: list) -> bool:
    return (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(_per_point(a, b, old_x, new_x) for a, b in zip(old, new))
    )


def _shift_array(ops: list[dict], at: list, old: list, new: list, k: int) -> None:
    """Drop ``k`` points from the start, fix the changed ones that stay, add the new ones at the end."""
    kept = len(old) - k
    changed = [j for j in range(kept) if old[k + j] != new[j]]
    if k > MOST_DELETES or len(changed) > max(4, kept // 4):
        ops.append(_op("Assign", at, value=new))
        return
    ops.extend(_op("Delete", [*at, 0]) for _ in range(k))
    ops.extend(_op("Assign", [*at, j], value=new[j]) for j in changed)
    if len(new) > kept:
        ops.append(_op("Extend", at, value=new[kept:]))


def _op(name: str, location: list, **params: Any) -> dict:
    return {"operation": name, "location": location, "params": params}


def apply_patch(value: Any, ops: list[dict]) -> Any:
    """Apply Dash patch operations (Assign, Delete, Extend) as the browser does; return the result."""
    out = orjson.loads(orjson.dumps(value))  # a deep copy of plain JSON, made in C
    for op in ops:
        *path, last = op["location"]
        parent = out
        for step in path:
            parent = parent[step]
        if op["operation"] == "Assign":
            parent[last] = op["params"]["value"]
        elif op["operation"] == "Delete":
            if isinstance(parent, list):
                del parent[last]
            else:
                parent.pop(last, None)
        elif op["operation"] == "Extend":
            parent[last].extend(op["params"]["value"])
        else:
            raise ValueError(f"unknown patch operation {op['operation']!r}")
    return out


class _Missing:
    def __eq__(self, other: object) -> bool:
        return other is self

    __hash__ = object.__hash__


_MISSING = _Missing()
