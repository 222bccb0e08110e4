"""Read a Prometheus /metrics endpoint into the store, with ``up`` saying whether it answered."""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from tsdb.metrics import METRIC_NAME, MetricSpec, Sample, freeze_labels

log = logging.getLogger(__name__)
USER_AGENT = "Pulseboard-scraper"


class ScrapeError(RuntimeError):
    """A target that could not be read or parsed."""


def fetch(url: str, timeout: float, max_bytes: int) -> str:
    """Return a target's exposition text; refuse one larger than max_bytes."""
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept": "text/plain;version=0.0.4"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) checked in config)
        length = response.headers.get("Content-Length")
        if length and int(length) > max_bytes:
            raise ScrapeError(f"response of {int(length):,} bytes is over the cap of {max_bytes:,}")
        body = response.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ScrapeError(f"response is over the cap of {max_bytes:,} bytes")
    return body.decode("utf-8", errors="replace")


class ScrapeCollector:
    """Scrape one target: each sample keeps its labels plus job and instance."""

    metrics = (
        MetricSpec(
            "up", "gauge", "none", "1 when the last scrape of a target worked, 0 when not.", "operations"
        ),
    )

    def __init__(
        self,
        url: str,
        job: str = "scrape",
        instance: str | None = None,
        labels: dict[str, str] | None = None,
        timeout: float = 5.0,
        max_bytes: int = 10 * 2**20,
        clock: Callable[[], float] = time.time,
        declare: Callable[[MetricSpec], None] | None = None,
        sample_limit: int = 0,
        admit: Callable[[list[Sample]], None] | None = None,
        access: str = "operations",
    ):
        self.access = access  # the access level of every metric this target serves
        self.url = url
        self.job = job
        self.instance = instance or urlsplit(url).netloc
        self.name = f"scrape:{self.job}:{self.instance}"
        self.extra = {**(labels or {}), "job": job, "instance": self.instance}
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.clock = clock
        self.declare = declare
        self.sample_limit = sample_limit  # Prometheus' meaning: a scrape with more is dropped whole
        self.admit = admit  # raises when the store would refuse these samples (its series cap)
        self.last_error: str | None = None
        self.last_scrape: float | None = None
        self.up = False

    def collect(self) -> list[Sample]:
        """Return the target's samples and ``up``; a failure returns ``up`` = 0 alone."""
        now = self.clock()
        target = freeze_labels({"job": self.job, "instance": self.instance})
        self.last_scrape = now
        try:
            samples = self._scrape(now)
        except Exception as exc:  # any failure marks the target down; other targets go on
            self.up = False
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("scrape of %s failed: %s", self.url, self.last_error)
            return [Sample("up", target, 0.0, now)]
        self.up = True
        self.last_error = None
        return [*samples, Sample("up", target, 1.0, now)]

    def _scrape(self, now: float) -> list[Sample]:
        text = fetch(self.url, self.timeout, self.max_bytes)
        out = []
        try:
            for family in text_string_to_metric_families(text):
                kind = "counter" if family.type == "counter" else "gauge"
                for s in family.samples:
                    if not METRIC_NAME.fullmatch(s.name) or s.name == "up":
                        continue
                    if self.declare is not None:
                        sample_kind = kind
                        if family.type in ("histogram", "summary") and s.name.endswith(
                            ("_bucket", "_count", "_sum")
                        ):
                            sample_kind = "counter"
                        self.declare(
                            MetricSpec(s.name, sample_kind, "none", family.documentation or "", self.access)
                        )
                    labels = freeze_labels({**s.labels, **self.extra})
                    out.append(Sample(s.name, labels, float(s.value), now))
        except ValueError as exc:
            raise ScrapeError(f"not a Prometheus exposition: {exc}") from None
        if self.sample_limit and len(out) > self.sample_limit:
            raise ScrapeError(
                f"the target exposed {len(out):,} samples, over its sample_limit of {self.sample_limit:,}: "
                "the whole scrape was dropped"
            )
        if self.admit is not None:
            self.admit(out)
        return out
