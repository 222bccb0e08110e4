"""A damaged store file never stops a start and never loses data silently: what can be read is served,
what was lost is counted in /status, /metrics/health and the log, and the storage alert fires."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from dashboard_app.runtime import Runtime
from tests.servers import quiet_settings, serving
from tsdb import salvage
from tsdb.archive import FILE
from tsdb.metrics import Sample

NAME = "pulseboard_system_cpu_core_usage_ratio"
SERIES, EACH = 100, 3000  # 300,000 samples, all inside the raw tier's 15 minutes (read from it alone)


def filled(data_dir) -> float:
    """Write 300,000 samples of 100 series to a data directory, stop cleanly, return the time."""
    runtime = Runtime(quiet_settings(), data_dir)
    now = time.time()
    for c in range(SERIES):
        runtime.store.append(
            Sample(NAME, (("core", str(c)),), float(i % 9), now - 850 + i * 0.276) for i in range(EACH)
        )
    runtime.stop()
    return now


def pages(path, table: str) -> tuple[int, int, list[int]]:
    """Return (page size, the table's root page, its leaf pages) of a store file."""
    db = sqlite3.connect(path)
    (size,) = db.execute("PRAGMA page_size").fetchone()
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    db.close()
    file = salvage._File(path)
    leaves = []
    for number, page, start in file.leaves():
        found = salvage.Salvaged()
        cells = int.from_bytes(page[start + 3 : start + 5], "big")
        for i in range(min(cells, 1)):
            pointer = int.from_bytes(page[start + 8 + 2 * i : start + 10 + 2 * i], "big")
            rowid, payload = file.payload(page, pointer)
            salvage._keep(found, rowid, salvage._record(payload))
        if (found.chunks if table == "chunks" else found.series) and number != root:
            leaves.append(number)
    return size, root, leaves


def spoil(path, page: int, size: int, at: int = 0, length: int | None = None) -> None:
    with open(path, "r+b") as f:
        f.seek((page - 1) * size + at)
        f.write(b"\xa5" * (length if length is not None else size))


def served(pb, now: float) -> tuple[int, int]:
    """Return (series, samples) the REST query serves of the 100 series: each one's count of samples."""
    at = now + 60
    body = {"query": f"count_over_time({NAME}[920s])", "start": at, "end": at, "step": 1}
    answer = pb.call("POST", "/metrics/query", body)
    assert answer.ok, answer.text
    series = answer.json()["series"]
    return len(series), int(sum(v for s in series for _, v in s["points"]))


@pytest.mark.parametrize("damage", ["chunks root", "series root", "three chunk leaves"])
def test_a_damaged_store_starts_serves_what_it_holds_and_reports_each_loss(tmp_path, caplog, damage):
    now = filled(tmp_path)
    path = tmp_path / "tsdb" / FILE
    if damage == "chunks root":
        size, root, _ = pages(path, "chunks")
        spoil(path, root, size)
    elif damage == "series root":
        size, root, _ = pages(path, "series")
        spoil(path, root, size)
    else:
        size, _, leaves = pages(path, "chunks")
        for leaf in leaves[:3]:
            spoil(path, leaf, size, at=8, length=16)  # the first cell pointers of three leaf pages
    runtime = Runtime(quiet_settings(), tmp_path)
    try:
        with serving(runtime) as pb:
            count, samples = served(pb, now)
            [problem] = pb.call("GET", "/status").json()["store"]["problems"]
            assert "was damaged" in problem and "kept in" in problem
            recovered = int(re.search(r"holding ([\d,]+) raw samples", problem).group(1).replace(",", ""))
            assert samples == recovered  # what the report says is kept is what is served
            if damage == "three chunk leaves":
                assert "rows that could not be read" in problem
                assert SERIES * EACH - 3 * 40 * 120 <= samples < SERIES * EACH
            else:
                assert (count, samples) == (SERIES, SERIES * EACH)  # every row sat in intact pages
            health = pb.call("GET", "/metrics/health").json()
            assert health["status"] == "degraded" and health["storage_problems"] == [problem]
            assert any("was damaged" in r.getMessage() for r in caplog.records)
            runtime.scheduler.run_once("self")
            runtime.alerts.evaluate()
            assert [a["state"] for a in runtime.alerts.active() if a["rule_id"] == "storage-damaged"] == [
                "firing"
            ]
    finally:
        runtime.stop()
    again = Runtime(quiet_settings(), tmp_path)  # the recovered file is whole: the next start is clean
    try:
        assert again.archive.problems == []
        with serving(again) as pb:
            assert served(pb, now)[1] == samples
    finally:
        again.stop()
