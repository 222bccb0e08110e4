"""Time to first full render of the operations dashboard in headless Chromium.

From the start of navigation to the moment every panel holds its figure (none still says
"Loading…"), measured in the page's own clock. Pulseboard runs under gunicorn as deployed.

    python -m bench.render [--loads 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options

from bench.history import deployed

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


def run(loads: int) -> dict:
    with deployed() as (url, _):
        driver = browser()
        try:
            cold = first_render(driver, url + "/operations")  # scripts not yet in the browser's cache
            warm = [first_render(driver, url + "/operations") for _ in range(loads)]
        finally:
            driver.quit()
    return {"cold_seconds": cold, "median_seconds": statistics.median(warm), "worst_seconds": max(warm)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=7)
    return run(parser.parse_args().loads)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
