"""Stand-ins for the world: a clock tests move by hand and a psutil that reads scripted values."""

from __future__ import annotations

from collections import namedtuple

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal")
Memory = namedtuple("Memory", "total available percent used free")
Swap = namedtuple("Swap", "total used free percent sin sout")
DiskIO = namedtuple("DiskIO", "read_count write_count read_bytes write_bytes read_time write_time")
NetIO = namedtuple("NetIO", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout")
Partition = namedtuple("Partition", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, now: float = 1_764_064_800.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class AccessDenied(Exception):
    """What psutil raises for a file it may not read (psutil.Error subclasses Exception)."""


class FakePs:
    """The psutil functions the system collectors call, answering from attributes tests set."""

    def __init__(self):
        self.cores = [CpuTimes(10, 0, 5, 85, 0, 0, 0, 0), CpuTimes(20, 0, 10, 70, 0, 0, 0, 0)]
        self.memory = Memory(
            total=8 * 2**30, available=6 * 2**30, percent=25.0, used=2 * 2**30, free=6 * 2**30
        )
        self.swap = Swap(total=2 * 2**30, used=2**29, free=3 * 2**29, percent=25.0, sin=0, sout=0)
        self.disk = DiskIO(0, 0, 1000, 2000, 0, 0)
        self.nics = {"eth0": NetIO(500, 1000, 0, 0, 0, 0, 0, 0)}
        self.processes = 42
        self.load = (0.5, 0.25, 0.125)
        self.booted = 1_764_000_000.0
        self.mounts = {"/": Usage(100 * 2**30, 40 * 2**30, 60 * 2**30, 40.0)}
        self.failing: set[str] = set()

    def _check(self, name: str) -> None:
        if name in self.failing:
            raise PermissionError(f"access denied reading {name}")

    def cpu_times(self, percpu: bool = False):
        self._check("cpu_times")
        if percpu:
            return list(self.cores)
        return CpuTimes(*(sum(values) for values in zip(*self.cores)))

    def virtual_memory(self):
        self._check("virtual_memory")
        return self.memory

    def swap_memory(self):
        self._check("swap_memory")
        return self.swap

    def disk_io_counters(self):
        self._check("disk_io_counters")
        return self.disk

    def net_io_counters(self, pernic: bool = False):
        self._check("net_io_counters")
        return dict(self.nics)

    def pids(self):
        self._check("pids")
        return list(range(self.processes))

    def getloadavg(self):
        self._check("getloadavg")
        return self.load

    def boot_time(self):
        return self.booted

    def disk_partitions(self, all: bool = False):  # noqa: A002 - psutil's own parameter name
        return [Partition(f"/dev/disk{i}", mount, "ext4", "rw") for i, mount in enumerate(self.mounts)]

    def disk_usage(self, path: str):
        usage = self.mounts[path]
        if usage is None:
            raise FileNotFoundError(f"no such mount: {path}")
        return usage

    def spend_cpu(self, seconds_busy: tuple[float, ...], seconds_idle: tuple[float, ...]) -> None:
        """Advance each core's counters by busy (user) and idle seconds."""
        self.cores = [
            c._replace(user=c.user + b, idle=c.idle + i)
            for c, b, i in zip(self.cores, seconds_busy, seconds_idle)
        ]
