"""Time to first full render of the operations dashboard in headless Chromium, and of Netdata's.

From the start of navigation to the moment every panel holds its figure (none still says
"Loading…"), measured in the page's own clock. Pulseboard runs under gunicorn as deployed.

    python -m bench.render [--loads 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time

import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

from bench.history import deployed
from bench.report import free_port, wait_for

RENDERED = """
var panels = document.querySelectorAll('.panel-graph');
if (!panels.length) return null;
for (var i = 0; i < panels.length; i++) {
  var plot = panels[i].querySelector('.js-plotly-plot');
  if (!plot || !plot.layout) return null;
  var notes = plot.layout.annotations || [];
  for (var j = 0; j < notes.length; j++) if (notes[j].text === 'Loading…') return null;
}
return performance.now();
"""


def browser() -> webdriver.Chrome:
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1024")
    return webdriver.Chrome(options=options)


def first_render(driver: webdriver.Chrome, url: str, timeout: float = 30) -> float:
    """Seconds from navigation start to every panel drawn."""
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at = driver.execute_script(RENDERED)
        if at is not None:
            return at / 1000
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not finish rendering in {timeout:.0f} s")


# Netdata's dashboard draws the charts in view as canvases; it is done when their count settles.
NETDATA_DRAWN = "return [document.querySelectorAll('[data-netdata] canvas').length, performance.now()];"
ZOOMS = {"30d": 30 * 86400, "7d": 7 * 86400, "1d": 86400, "6h": 6 * 3600, "1h": 3600}


def netdata_render(driver: webdriver.Chrome, url: str, settle: float = 1.0, timeout: float = 30) -> float:
    """Seconds from navigation start until the charts in view are drawn (no new one for ``settle`` s)."""
    driver.get("about:blank")
    driver.get(url)
    count, changed_at, deadline = 0, 0.0, time.monotonic() + timeout
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        drawn, now = driver.execute_script(NETDATA_DRAWN)
        if drawn != count:
            count, changed_at, last_change = drawn, now, time.monotonic()
        elif count and time.monotonic() - last_change >= settle:
            return changed_at / 1000
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not finish drawing in {timeout:.0f} s")


def netdata(loads: int) -> dict:
    """Netdata's dashboard in the same browser, and its data API asked for the zoom benchmark's spans."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [shutil.which("netdata") or "/usr/sbin/netdata", "-D", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(base + "/api/v1/info", "Netdata")
        time.sleep(10)  # some history on its charts
        driver = browser()
        try:
            cold = netdata_render(driver, base + "/")
            warm = [netdata_render(driver, base + "/") for _ in range(loads)]
        finally:
            driver.quit()
        http = requests.Session()
        zoom = {}
        for name, span in ZOOMS.items():
            url = f"{base}/api/v1/data?chart=system.cpu&after=-{span}&points=240&group=average&format=json"
            timings = []
            for _ in range(20):
                t0 = time.perf_counter()
                http.get(url, timeout=10).raise_for_status()
                timings.append(time.perf_counter() - t0)
            zoom[name] = statistics.median(timings) * 1000
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
    return {
        "cold_seconds": cold,
        "median_seconds": statistics.median(warm),
        "worst_seconds": max(warm),
        "zoom_ms": zoom,
    }


def run(loads: int) -> dict:
    with deployed() as (url, _):
        driver = browser()
        try:
            cold = first_render(driver, url + "/operations")  # scripts not yet in the browser's cache
            warm = [first_render(driver, url + "/operations") for _ in range(loads)]
        finally:
            driver.quit()
    out = {"cold_seconds": cold, "median_seconds": statistics.median(warm), "worst_seconds": max(warm)}
    if shutil.which("netdata") or os.path.exists("/usr/sbin/netdata"):
        out["netdata"] = netdata(loads)
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=7)
    return run(parser.parse_args().loads)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
