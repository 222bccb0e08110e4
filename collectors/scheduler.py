"""Run collectors at their intervals in background threads and keep each one's health."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from tsdb.metrics import Collector
from tsdb.store import Store

log = logging.getLogger(__name__)


@dataclass
class JobHealth:
    """What an operator needs to know about one background job."""

    name: str
    interval: float
    runs: int = 0
    failures: int = 0
    last_success: float | None = None
    last_error: float | None = None
    last_error_message: str | None = None
    last_duration: float | None = None
    last_samples: int = 0
    running_since: float | None = None

    def as_dict(self, now: float) -> dict:
        out = asdict(self)
        # A run that lasts three intervals is stuck; its thread is left alone, the others go on.
        out["hung"] = self.running_since is not None and now - self.running_since > 3 * self.interval
        return out


class Scheduler:
    """Run each job in its own daemon thread, so one that raises or hangs cannot stop the others."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._jobs: dict[str, tuple[float, Callable[[], int]]] = {}
        self.producers: dict[str, str] = {}  # metric name -> the job that collects it
        self._health: dict[str, JobHealth] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def every(self, name: str, interval: float, job: Callable[[], int | None]) -> None:
        """Run ``job`` every ``interval`` seconds once started; it returns how many samples it made."""
        if name in self._jobs:
            raise ValueError(f"a job named {name!r} is already scheduled")
        self._jobs[name] = (interval, job)
        self._health[name] = JobHealth(name, interval)

    def collect(self, collector: Collector, store: Store, interval: float) -> None:
        """Schedule a collector whose samples go to the store."""
        for spec in collector.metrics:
            store.declare(spec, collector.name)
            self.producers.setdefault(spec.name, collector.name)
        self.every(collector.name, interval, lambda: store.append(collector.collect()))

    def trouble(self, metric: str) -> str | None:
        """Say why a metric's collector is not delivering (failing or hung), or None when it is."""
        name = self.producers.get(metric)
        health = self._health.get(name) if name else None
        if health is None:
            return None
        now = self.clock()
        if health.running_since is not None and now - health.running_since > 3 * health.interval:
            return f"the {name} collector has hung for {now - health.running_since:.0f} s"
        if health.last_error is not None and health.last_error >= (health.last_success or 0):
            return f"the {name} collector is failing: {health.last_error_message}"
        return None

    def run_once(self, name: str) -> None:
        """Run one job now, recording its health, and never raise."""
        interval, job = self._jobs[name]
        health = self._health[name]
        started = self.clock()
        health.running_since = started
        t0 = time.perf_counter()
        try:
            made = job()
        except Exception as exc:  # a failing job is recorded and retried at its next tick
            health.failures += 1
            health.last_error = started
            health.last_error_message = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", name)
        else:
            health.last_success = started
            health.last_samples = int(made or 0)
        finally:
            health.runs += 1
            health.last_duration = time.perf_counter() - t0
            health.running_since = None

    def _loop(self, name: str) -> None:
        interval = self._jobs[name][0]
        next_run = time.monotonic()
        while not self._stop.is_set():
            self.run_once(name)
            next_run += interval
            now = time.monotonic()
            if next_run < now:  # fell behind (a slow run): skip missed ticks rather than bunch them
                next_run = now + interval - (now - next_run) % interval
            self._stop.wait(next_run - now)

    @property
    def started(self) -> bool:
        """Whether the jobs run (started and not stopped)."""
        return bool(self._threads) and not self._stop.is_set()

    def start(self) -> None:
        """Start one thread per job."""
        self._stop.clear()
        for name in self._jobs:
            thread = threading.Thread(target=self._loop, args=(name,), name=f"pulseboard-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every job to stop and wait for the threads that are not stuck."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def health(self) -> list[dict]:
        """Return each job's health, as the status view shows it."""
        now = self.clock()
        return [h.as_dict(now) for h in self._health.values()]
