"""History survives a restart through files on disk."""

from __future__ import annotations

from collectors.persistence import StoreArchive
from collectors.store import Store, Tier
from tests.test_store import gauge


def new_store(clock):
    return Store(Tier(0, 900), 1, [Tier(60, 86400)], clock=clock)


def test_flushed_samples_come_back_after_a_restart(tmp_path, clock):
    store = new_store(clock)
    archive = StoreArchive(tmp_path)
    t0 = clock.now
    store.append([gauge(i, t0 + i, core=str(i % 2)) for i in range(20)])
    archive.flush(store)
    store.append([gauge(99, t0 + 30, core="0")])
    archive.flush(store)
    archive.close()

    clock.advance(40)
    again = new_store(clock)
    StoreArchive(tmp_path).load(again)
    core0 = next(s for s in again.series("load") if s.label_dict == {"core": "0"})
    ts, val = again.read_raw(core0.id, 0, clock.now)
    assert val.tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 99]
    rollup = again.read_rollup(again.tiers[1], core0.id, 0, clock.now)
    assert rollup.count.sum() == 11


def test_snapshot_replaces_chunks_and_restores_everything(tmp_path, clock):
    store = new_store(clock)
    archive = StoreArchive(tmp_path, snapshot_every=2)
    store.append([gauge(1, clock.now)])
    archive.flush(store)  # chunk
    store.append([gauge(2, clock.now + 1)])
    archive.flush(store)  # snapshot, chunks dropped
    assert archive._chunk_keys() == []
    store.append([gauge(3, clock.now + 2)])
    archive.flush(store)  # chunk after the snapshot
    archive.close()

    clock.advance(5)
    again = new_store(clock)
    StoreArchive(tmp_path).load(again)
    assert again.read_raw(0, 0, clock.now)[1].tolist() == [1, 2, 3]
    # New samples after the restart continue the same series in order.
    assert again.append([gauge(4, clock.now)]) == 1
    assert again.append([gauge(0, clock.now - 100)]) == 0


def test_history_past_retention_is_gone_after_a_long_stop(tmp_path, clock):
    store = new_store(clock)
    archive = StoreArchive(tmp_path)
    store.append([gauge(7, clock.now)])
    archive.snapshot(store)
    archive.close()
    clock.advance(2 * 86400)
    again = new_store(clock)
    StoreArchive(tmp_path).load(again)
    assert again.read_raw(0, 0, clock.now)[0].size == 0
    assert len(again.read_rollup(again.tiers[1], 0, 0, clock.now)) == 0


def test_changed_retention_keeps_what_still_fits(tmp_path, clock):
    store = new_store(clock)
    archive = StoreArchive(tmp_path)
    store.append([gauge(5, clock.now)])
    archive.snapshot(store)
    archive.close()
    clock.advance(1)
    smaller = Store(Tier(0, 300), 1, [Tier(60, 3600)], clock=clock)
    StoreArchive(tmp_path).load(smaller)
    assert smaller.series("load")
    assert len(smaller.read_rollup(smaller.tiers[1], 0, 0, clock.now)) == 1
