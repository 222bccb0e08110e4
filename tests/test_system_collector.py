"""The system collectors: rates from counters, CPU shares, and failures that keep the rest."""

from __future__ import annotations

import pytest

from collectors.system import DiskUsageCollector, SystemCollector
from dashboard_app.sources.source import EmbeddedSource
from tests.fakes import DiskIO, NetIO, Usage


def by_name(samples):
    return {(s.name, s.labels): s.value for s in samples}


def test_network_and_disk_bytes_are_counters_whose_rate_the_store_takes(fake_ps, clock, store):
    collector = SystemCollector(ps=fake_ps, clock=clock)
    first = by_name(collector.collect())
    assert first[("pulseboard_system_disk_read_bytes_total", ())] == 1000  # from the first reading
    store.append(s for s in collector.collect() if s.name.endswith("_bytes_total"))
    for _ in range(3):
        fake_ps.disk = DiskIO(
            0, 0, fake_ps.disk.read_bytes + 5 * 4096, fake_ps.disk.write_bytes + 5 * 8192, 0, 0
        )
        sent, received = fake_ps.nics["eth0"].bytes_sent, fake_ps.nics["eth0"].bytes_recv
        fake_ps.nics = {"eth0": NetIO(sent + 5000, received + 10_000, 0, 0, 0, 0, 0, 0)}
        clock.advance(5)
        store.append(s for s in collector.collect() if s.name.endswith("_bytes_total"))
    specs = {spec.name: spec for spec in collector.metrics}
    assert specs["pulseboard_system_network_receive_bytes_total"].type == "counter"
    source = EmbeddedSource(store)
    rate = {
        name: [v for _, v in source.instant(f"rate({name}[15s])", clock.now)]
        for name in (
            "pulseboard_system_disk_read_bytes_total",
            "pulseboard_system_disk_written_bytes_total",
            "pulseboard_system_network_receive_bytes_total",
            "pulseboard_system_network_transmit_bytes_total",
        )
    }
    assert rate["pulseboard_system_disk_read_bytes_total"] == [pytest.approx(4096)]
    assert rate["pulseboard_system_disk_written_bytes_total"] == [pytest.approx(8192)]
    assert rate["pulseboard_system_network_receive_bytes_total"] == [pytest.approx(2000)]
    assert rate["pulseboard_system_network_transmit_bytes_total"] == [pytest.approx(1000)]


def test_cpu_total_and_per_core_busy_share(fake_ps, clock):
    collector = SystemCollector(ps=fake_ps, clock=clock)
    collector.collect()
    fake_ps.spend_cpu(seconds_busy=(1.0, 4.0), seconds_idle=(3.0, 0.0))
    clock.advance(4)
    samples = by_name(collector.collect())
    assert samples[("pulseboard_system_cpu_core_usage_ratio", (("core", "0"),))] == pytest.approx(0.25)
    assert samples[("pulseboard_system_cpu_core_usage_ratio", (("core", "1"),))] == pytest.approx(1.0)
    assert samples[("pulseboard_system_cpu_usage_ratio", ())] == pytest.approx(5 / 8)


def test_gauges_memory_swap_load_processes_uptime(fake_ps, clock):
    samples = by_name(SystemCollector(ps=fake_ps, clock=clock).collect())
    assert samples[("pulseboard_system_memory_used_bytes", ())] == 2 * 2**30
    assert samples[("pulseboard_system_memory_usage_ratio", ())] == pytest.approx(0.25)
    assert samples[("pulseboard_system_swap_usage_ratio", ())] == pytest.approx(0.25)
    assert samples[("pulseboard_system_load_average", (("period", "15m"),))] == 0.125
    assert samples[("pulseboard_system_processes", ())] == 42
    assert samples[("pulseboard_system_uptime_seconds", ())] == pytest.approx(clock.now - fake_ps.booted)


def test_one_failing_group_is_counted_and_the_rest_kept(fake_ps, clock):
    fake_ps.failing = {"virtual_memory"}
    collector = SystemCollector(ps=fake_ps, clock=clock)
    samples = by_name(collector.collect())
    assert ("pulseboard_system_memory_used_bytes", ()) not in samples
    assert samples[("pulseboard_system_processes", ())] == 42
    errors = (("collector", "system"), ("group", "memory"))
    assert samples[("pulseboard_collector_errors_total", errors)] == 1
    collector.collect()
    assert collector.errors["memory"] == 2


def test_disk_usage_skips_a_missing_mount(fake_ps, clock):
    fake_ps.mounts = {"/": Usage(100, 40, 60, 40.0), "/gone": None}
    collector = DiskUsageCollector(ps=fake_ps, clock=clock)
    samples = collector.collect()
    mounts = {dict(s.labels)["mount"] for s in samples if s.name == "pulseboard_system_disk_usage_ratio"}
    assert mounts == {"/"}
    assert collector.errors["mounts"] == 1


def test_every_sample_is_declared_in_the_metric_table(fake_ps, clock):
    for collector in (SystemCollector(ps=fake_ps, clock=clock), DiskUsageCollector(ps=fake_ps, clock=clock)):
        collector.collect()
        clock.advance(1)
        declared = {m.name for m in collector.metrics}
        assert {s.name for s in collector.collect()} <= declared
