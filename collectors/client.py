"""Push metrics to Pulseboard from a Python application.

    from collectors.client import Pulse
    pulse = Pulse("http://127.0.0.1:8050", api_key="...")
    orders = pulse.counter("shop_orders_total", "Orders placed", labels=["region"], category="business")
    orders.inc(region="eu")
    latency = pulse.histogram("shop_request_duration_seconds", "Request time", unit="seconds")
    with latency.time():
        handle_request()

Calls only queue the sample: a background thread sends batches, retries with backoff while
Pulseboard is away, and drops the oldest samples once the queue is full. Nothing here raises
into the application or waits on the network.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ingest.paths import API_PREFIX

log = logging.getLogger("pulseboard.client")
API = API_PREFIX + "/metrics/custom"


class HttpTransport:
    """POST JSON to a Pulseboard server; return (status, body)."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 2.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {}


class _Metric:
    def __init__(self, pulse: Pulse, name: str):
        self._pulse = pulse
        self.name = name

    def _add(self, value: float, labels: dict) -> None:
        self._pulse._queue_sample(self.name, labels, value)


class Counter(_Metric):
    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Count ``amount`` (never negative) more."""
        if amount >= 0:
            self._add(amount, labels)


class Gauge(_Metric):
    def set(self, value: float, **labels: str) -> None:
        """Set the current value."""
        self._add(value, labels)


class Histogram(_Metric):
    def observe(self, value: float, **labels: str) -> None:
        """Record one observation."""
        self._add(value, labels)

    @contextmanager
    def time(self, **labels: str) -> Iterator[None]:
        """Observe how long the block took, in seconds, even when it raises."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - t0, **labels)


class Pulse:
    """A metrics client that batches samples to Pulseboard in the background."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        transport=None,
        flush_interval: float = 1.0,
        batch_size: int = 1000,
        max_queue: int = 100_000,
        background: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        if transport is None:
            if url is None:
                raise ValueError("give the Pulseboard url or a transport")
            transport = HttpTransport(url, api_key)
        self.transport = transport
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.clock = clock
        self._samples: deque = deque(maxlen=max_queue)
        self._definitions: dict[str, dict] = {}
        self._registered: set[str] = set()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self.sent = 0
        self.dropped = 0
        self.failures = 0
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._loop, name="pulseboard-client", daemon=True)
            self._thread.start()

    # ----- metric handles
    def _define(self, name: str, kind: str, help: str, labels, unit: str, category: str, access) -> None:
        definition = {
            "name": name,
            "type": kind,
            "help": help,
            "unit": unit,
            "labels": list(labels),
            "category": category,
        }
        if access is not None:  # who may read it: executive, operations or development (else the category's)
            definition["access"] = access
        with self._lock:
            self._definitions[name] = definition

    def counter(self, name, help="", labels=(), unit="", category="custom", access=None) -> Counter:
        """Declare a counter; ``access`` names the level of its readers (left out: the category's)."""
        self._define(name, "counter", help, labels, unit, category, access)
        return Counter(self, name)

    def gauge(self, name, help="", labels=(), unit="", category="custom", access=None) -> Gauge:
        """Declare a gauge; ``access`` names the level of its readers (left out: the category's)."""
        self._define(name, "gauge", help, labels, unit, category, access)
        return Gauge(self, name)

    def histogram(self, name, help="", labels=(), unit="", category="custom", access=None) -> Histogram:
        """Declare a histogram; ``access`` names the level of its readers (left out: the category's)."""
        self._define(name, "histogram", help, labels, unit, category, access)
        return Histogram(self, name)

    def _queue_sample(self, name: str, labels: dict, value: float, timestamp: float | None = None) -> None:
        sample = {"name": name, "labels": labels, "value": value, "timestamp": timestamp or self.clock()}
        with self._lock:
            if len(self._samples) == self._samples.maxlen:
                self.dropped += 1
            self._samples.append(sample)

    # ----- sending
    def flush(self) -> int:
        """Send what is queued now; return how many samples Pulseboard took. Never raises."""
        with self._send_lock:
            try:
                return self._flush()
            except Exception as exc:  # the network or Pulseboard: keep the samples, try again later
                self.failures += 1
                log.debug("pulseboard push failed: %s", exc)
                return -1

    def _flush(self) -> int:
        with self._lock:
            todo = [d for n, d in self._definitions.items() if n not in self._registered]
        for definition in todo:
            status, body = self.transport.post(f"{API}/register", definition)
            if status in (200, 201):
                self._registered.add(definition["name"])
            elif 400 <= status < 500:  # a bad definition will not get better: stop sending it
                log.warning("pulseboard refused %s: %s", definition["name"], body.get("error"))
                with self._lock:
                    self._definitions.pop(definition["name"], None)
            else:
                raise ConnectionError(f"register answered {status}")
        sent = 0
        while True:
            with self._lock:
                batch = [self._samples.popleft() for _ in range(min(self.batch_size, len(self._samples)))]
            if not batch:
                return sent
            kept = [s for s in batch if s["name"] in self._registered]
            self.dropped += len(batch) - len(kept)  # their definition was refused
            batch = kept
            if not batch:
                continue
            status, body = self.transport.post(f"{API}/record", {"samples": batch})
            if status == 404:  # Pulseboard forgot a definition (a new data directory): register again
                self._registered.clear()
            if status >= 500 or status == 404:
                with self._lock:
                    self._samples.extendleft(reversed(batch))
                raise ConnectionError(f"record answered {status}")
            if status >= 400:
                self.dropped += len(batch)
                log.warning("pulseboard refused a batch: %s", body.get("error"))
                continue
            sent += len(batch)
            self.sent += len(batch)

    def _loop(self) -> None:
        delay = self.flush_interval
        while not self._stop.wait(delay):
            if self.flush() < 0:
                # Back off, with jitter, up to 30 s while Pulseboard cannot be reached.
                delay = min(30.0, max(delay, self.flush_interval) * 2) * random.uniform(0.8, 1.2)
            else:
                delay = self.flush_interval

    def close(self, timeout: float = 2.0) -> None:
        """Stop the background thread after one last attempt to send."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()
