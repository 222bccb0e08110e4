"""Deliver alerts to a Prometheus Alertmanager (API v2) and to webhooks, off the evaluation thread.

Webhook body (one POST per change, JSON):

    {"version": "1", "source": "pulseboard", "status": "firing" | "resolved",
     "alerts": [{"rule_id", "name", "severity", "state", "labels", "annotations", "value",
                 "active_at", "fired_at", "resolved_at"}]}

Times are Unix seconds. Deliveries are retried with exponential backoff; firing alerts are sent to
Alertmanager again every ``resend_interval`` so that it keeps them active.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)
RETRIES = 5


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def alertmanager_body(alerts: list[dict], generator: str) -> list[dict]:
    """Return alerts in Alertmanager's API v2 form: labels, annotations, startsAt, endsAt."""
    out = []
    for a in alerts:
        item = {
            "labels": {k: str(v) for k, v in a["labels"].items()},
            "annotations": a["annotations"],
            "startsAt": _iso(a["fired_at"] or a["active_at"]),
            "generatorURL": f"{generator}/alerts",
        }
        if a["state"] == "resolved":
            item["endsAt"] = _iso(a["resolved_at"])
        out.append(item)
    return out


def post_json(url: str, body: object, timeout: float = 5.0) -> int:
    """POST JSON; return the status, raising for a failed connection or a 5xx."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URLs)
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise
        return exc.code


class Notifier:
    """A delivery thread with a queue: ``send`` never blocks the caller."""

    def __init__(
        self,
        alertmanager: str | None,
        webhooks: tuple[str, ...] = (),
        generator: str = "http://127.0.0.1:8050",
        resend_interval: float = 60.0,
        post: Callable[[str, object], int] = post_json,
        backoff: float = 1.0,
    ):
        self.alertmanager = alertmanager.rstrip("/") if alertmanager else None
        self.webhooks = tuple(webhooks)
        self.generator = generator
        self.resend_interval = resend_interval
        self.post = post
        self.backoff = backoff
        self._queue: queue.Queue = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanager or self.webhooks)

    def send(self, alerts: list) -> None:
        """Queue changed alerts (Alert objects or dicts) for every destination."""
        if not self.enabled or not alerts:
            return
        items = [a if isinstance(a, dict) else a.as_dict() for a in alerts]
        for status in ("firing", "resolved"):
            group = [a for a in items if a["state"] == status]
            if not group:
                continue
            if self.alertmanager:
                self._put(f"{self.alertmanager}/api/v2/alerts", alertmanager_body(group, self.generator))
            for url in self.webhooks:
                self._put(url, {"version": "1", "source": "pulseboard", "status": status, "alerts": group})

    def resend(self, firing: list[dict]) -> None:
        """Tell Alertmanager again about alerts still firing, so that they stay active there."""
        if self.alertmanager and firing:
            self._put(f"{self.alertmanager}/api/v2/alerts", alertmanager_body(firing, self.generator))

    def _put(self, url: str, body: object) -> None:
        try:
            self._queue.put_nowait((url, body, 0))
        except queue.Full:
            self.failed += 1
            log.warning("alert delivery queue is full; dropped a delivery to %s", url)

    def start(self) -> None:
        if self._thread is None and self.enabled:
            self._thread = threading.Thread(target=self._run, name="pulseboard-notify", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                url, body, attempt = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                status = self.post(url, body)
                if status >= 400:
                    log.warning("%s refused an alert delivery with %s", url, status)
                    self.failed += 1
                else:
                    self.delivered += 1
            except Exception as exc:  # the receiver is down: try again later, up to RETRIES times
                self.last_error = f"{url}: {type(exc).__name__}: {exc}"
                if attempt + 1 >= RETRIES:
                    self.failed += 1
                    log.warning("gave up delivering an alert to %s: %s", url, exc)
                    continue
                delay = self.backoff * 2**attempt
                threading.Timer(
                    delay, lambda u=url, b=body, n=attempt + 1: self._queue.put((u, b, n))
                ).start()

    def pending(self) -> int:
        return self._queue.qsize()


def wait_delivered(notifier: Notifier, count: int, timeout: float = 10.0) -> bool:
    """Wait until at least ``count`` deliveries succeeded (for tests and scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if notifier.delivered >= count:
            return True
        time.sleep(0.05)
    return False
