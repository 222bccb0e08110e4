"""Host metrics from psutil: CPU, memory, swap, disk usage and I/O, network, processes, load, uptime."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from tsdb.metrics import MetricSpec, Sample, freeze_labels

log = logging.getLogger(__name__)

_OS_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError)
try:  # psutil.Error covers AccessDenied, NoSuchProcess and ZombieProcess
    import psutil

    _OS_ERRORS = (OSError, RuntimeError, psutil.Error)
except ImportError:  # pragma: no cover - psutil is a requirement
    psutil = None

LEVEL = "operations"  # the host's metrics are read on the operations dashboard
ERRORS = MetricSpec(
    "pulseboard_collector_errors_total",
    "counter",
    "count",
    "Metric groups a collector failed to read.",
    LEVEL,
)


def _spec(name: str, kind: str, unit: str, text: str) -> MetricSpec:
    return MetricSpec(f"pulseboard_system_{name}", kind, unit, text, LEVEL)


class _GroupedCollector:
    """Run each metric group on its own, so one failing group leaves the others' samples."""

    name = ""
    groups: tuple[str, ...] = ()

    def __init__(self, ps: Any = None, clock: Callable[[], float] = time.time):
        self.ps = ps if ps is not None else psutil
        self.clock = clock
        self.errors: Counter[str] = Counter()

    def collect(self) -> list[Sample]:
        """Return one snapshot; a group that fails is logged and counted, the rest kept."""
        now = self.clock()
        samples: list[Sample] = []
        for group in self.groups:
            try:
                samples.extend(
                    Sample(name, freeze_labels(labels), float(value), now)
                    for name, labels, value in getattr(self, f"read_{group}")(now)
                )
            except _OS_ERRORS as exc:
                self.errors[group] += 1
                log.warning("%s collector: cannot read %s: %s", self.name, group, exc)
        samples.extend(
            Sample(ERRORS.name, freeze_labels({"collector": self.name, "group": g}), float(n), now)
            for g, n in self.errors.items()
        )
        return samples


Reading = Iterator[tuple[str, dict[str, str] | None, float]]


class SystemCollector(_GroupedCollector):
    """Collect the fast-changing host metrics."""

    name = "system"
    groups = ("cpu", "memory", "swap", "disk_io", "network", "processes", "load", "uptime")
    metrics = (
        _spec("cpu_usage_ratio", "gauge", "ratio", "Share of CPU time spent busy, all cores."),
        _spec("cpu_core_usage_ratio", "gauge", "ratio", "Share of CPU time spent busy, per core."),
        _spec("memory_total_bytes", "gauge", "bytes", "Physical memory installed."),
        _spec("memory_used_bytes", "gauge", "bytes", "Physical memory in use (total less available)."),
        _spec(
            "memory_available_bytes", "gauge", "bytes", "Memory available to new processes without swapping."
        ),
        _spec("memory_usage_ratio", "gauge", "ratio", "Share of physical memory in use."),
        _spec("swap_total_bytes", "gauge", "bytes", "Swap space configured."),
        _spec("swap_used_bytes", "gauge", "bytes", "Swap space in use."),
        _spec("swap_usage_ratio", "gauge", "ratio", "Share of swap space in use."),
        # Cumulative bytes are counters, as in node_exporter: rates are taken when read.
        _spec("disk_read_bytes_total", "counter", "bytes", "Bytes read from all disks since boot."),
        _spec("disk_written_bytes_total", "counter", "bytes", "Bytes written to all disks since boot."),
        _spec("network_receive_bytes_total", "counter", "bytes", "Bytes received since boot."),
        _spec("network_transmit_bytes_total", "counter", "bytes", "Bytes sent since boot."),
        _spec("processes", "gauge", "count", "Processes running on the host."),
        _spec("load_average", "gauge", "none", "Run-queue length averaged over 1, 5 and 15 minutes."),
        _spec("uptime_seconds", "gauge", "seconds", "Time since the host booted."),
        ERRORS,
    )

    def __init__(self, ps: Any = None, clock: Callable[[], float] = time.time):
        super().__init__(ps, clock)
        self._cpu_times: dict[str, tuple[float, float]] = {}

    def _busy_ratio(self, key: str, times: Any) -> float | None:
        total = sum(times)
        idle = times.idle + getattr(times, "iowait", 0.0)
        previous = self._cpu_times.get(key)
        self._cpu_times[key] = (total, idle)
        if previous is None or total <= previous[0]:
            return None
        elapsed, idled = total - previous[0], idle - previous[1]
        return min(1.0, max(0.0, (elapsed - idled) / elapsed))

    def read_cpu(self, now: float) -> Reading:
        total = self._busy_ratio("total", self.ps.cpu_times())
        if total is not None:
            yield "pulseboard_system_cpu_usage_ratio", None, total
        for core, times in enumerate(self.ps.cpu_times(percpu=True)):
            ratio = self._busy_ratio(str(core), times)
            if ratio is not None:
                yield "pulseboard_system_cpu_core_usage_ratio", {"core": str(core)}, ratio

    def read_memory(self, now: float) -> Reading:
        mem = self.ps.virtual_memory()
        used = mem.total - mem.available
        yield "pulseboard_system_memory_total_bytes", None, mem.total
        yield "pulseboard_system_memory_used_bytes", None, used
        yield "pulseboard_system_memory_available_bytes", None, mem.available
        yield "pulseboard_system_memory_usage_ratio", None, used / mem.total if mem.total else 0.0

    def read_swap(self, now: float) -> Reading:
        swap = self.ps.swap_memory()
        yield "pulseboard_system_swap_total_bytes", None, swap.total
        yield "pulseboard_system_swap_used_bytes", None, swap.used
        yield "pulseboard_system_swap_usage_ratio", None, swap.used / swap.total if swap.total else 0.0

    def read_disk_io(self, now: float) -> Reading:
        io = self.ps.disk_io_counters()
        if io is None:  # no disks the kernel reports I/O for
            return
        yield "pulseboard_system_disk_read_bytes_total", None, io.read_bytes
        yield "pulseboard_system_disk_written_bytes_total", None, io.write_bytes

    def read_network(self, now: float) -> Reading:
        for interface, io in sorted(self.ps.net_io_counters(pernic=True).items()):
            yield "pulseboard_system_network_receive_bytes_total", {"interface": interface}, io.bytes_recv
            yield "pulseboard_system_network_transmit_bytes_total", {"interface": interface}, io.bytes_sent

    def read_processes(self, now: float) -> Reading:
        yield "pulseboard_system_processes", None, len(self.ps.pids())

    def read_load(self, now: float) -> Reading:
        for period, value in zip(("1m", "5m", "15m"), self.ps.getloadavg()):
            yield "pulseboard_system_load_average", {"period": period}, value

    def read_uptime(self, now: float) -> Reading:
        yield "pulseboard_system_uptime_seconds", None, max(0.0, now - self.ps.boot_time())


class DiskUsageCollector(_GroupedCollector):
    """Collect space used per mounted filesystem: a slow category."""

    name = "disk_usage"
    groups = ("mounts",)
    metrics = (
        _spec("disk_total_bytes", "gauge", "bytes", "Size of the filesystem at a mount point."),
        _spec("disk_used_bytes", "gauge", "bytes", "Space used on the filesystem at a mount point."),
        _spec("disk_usage_ratio", "gauge", "ratio", "Share of the filesystem at a mount point in use."),
        ERRORS,
    )

    def read_mounts(self, now: float) -> Reading:
        seen = set()
        for part in self.ps.disk_partitions(all=False):
            if part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                usage = self.ps.disk_usage(part.mountpoint)
            except _OS_ERRORS as exc:  # a mount that vanished or is not readable: skip it, keep the others
                self.errors["mounts"] += 1
                log.warning("disk_usage collector: cannot read %s: %s", part.mountpoint, exc)
                continue
            labels = {"mount": part.mountpoint, "device": part.device, "fstype": part.fstype}
            yield "pulseboard_system_disk_total_bytes", labels, usage.total
            yield "pulseboard_system_disk_used_bytes", labels, usage.used
            yield (
                "pulseboard_system_disk_usage_ratio",
                labels,
                usage.used / usage.total if usage.total else 0.0,
            )
