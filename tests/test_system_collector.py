"""The system collectors: rates from counters, CPU shares, and failures that keep the rest."""

from __future__ import annotations

import pytest

from collectors.metrics import CounterRates
from collectors.system import DiskUsageCollector, SystemCollector
from tests.fakes import DiskIO, NetIO, Usage


def by_name(samples):
    return {(s.name, s.labels): s.value for s in samples}


def test_first_counter_reading_has_no_rate():
    rates = CounterRates()
    assert rates.rate("rx", 100.0, 10.0) is None
    assert rates.rate("rx", 150.0, 15.0) == pytest.approx(10.0)


def test_counter_reset_never_gives_a_negative_rate():
    rates = CounterRates()
    rates.rate("rx", 1_000_000.0, 0.0)
    after_reset = rates.rate("rx", 300.0, 10.0)
    assert after_reset == pytest.approx(30.0)  # the 300 counted since the reset, over 10 s


def test_counter_reading_at_same_time_gives_no_rate():
    rates = CounterRates()
    rates.rate("rx", 1.0, 5.0)
    assert rates.rate("rx", 2.0, 5.0) is None


def test_network_and_disk_rates_per_second(fake_ps, clock):
    collector = SystemCollector(ps=fake_ps, clock=clock)
    first = by_name(collector.collect())
    assert ("pulseboard_system_disk_read_bytes_per_second", ()) not in first
    fake_ps.disk = DiskIO(0, 0, 1000 + 5 * 4096, 2000 + 5 * 8192, 0, 0)
    fake_ps.nics = {"eth0": NetIO(500 + 5000, 1000 + 10_000, 0, 0, 0, 0, 0, 0)}
    clock.advance(5)
    second = by_name(collector.collect())
    assert second[("pulseboard_system_disk_read_bytes_per_second", ())] == pytest.approx(4096)
    assert second[("pulseboard_system_disk_write_bytes_per_second", ())] == pytest.approx(8192)
    eth0 = (("interface", "eth0"),)
    assert second[("pulseboard_system_network_receive_bytes_per_second", eth0)] == pytest.approx(2000)
    assert second[("pulseboard_system_network_transmit_bytes_per_second", eth0)] == pytest.approx(1000)


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
