"""Series limits against a real node_exporter: a scrape's sample_limit and the store's series cap."""

from __future__ import annotations

import json

from dashboard_app.runtime import Runtime
from tests.servers import node_exporter, quiet_settings, serving


def scraping(tmp_path, url: str, **overrides) -> Runtime:
    target = {"url": url, "job": "node", "interval": "15s", **overrides.pop("target", {})}
    return Runtime(quiet_settings(scrape=json.dumps([target]), **overrides), tmp_path)


def node_series(runtime: Runtime) -> int:
    return sum(len(runtime.store.series(n)) for n in runtime.store.names() if n.startswith("node_"))


def test_a_scrape_over_its_sample_limit_is_dropped_whole_and_the_target_marked_down(tmp_path):
    with node_exporter() as url:
        runtime = scraping(tmp_path / "limited", url, target={"sample_limit": 50})
        [target] = runtime.targets
        runtime.scheduler.run_once(target.name)
        assert node_series(runtime) == 0  # not the first 50: nothing
        [(up, _, value)] = runtime.store.latest(["up"])
        assert value == 0.0 and up.label_dict["job"] == "node"
        with serving(runtime) as pb:
            [status] = pb.call("GET", "/status").json()["scrape_targets"]
        assert status["up"] is False and "over its sample_limit of 50" in status["last_error"]
        exposed = int(status["last_error"].split("exposed ")[1].split(" samples")[0].replace(",", ""))
        assert exposed > 50
        runtime.store.close()

        roomy = scraping(tmp_path / "roomy", url, target={"sample_limit": exposed + 1000})
        [target] = roomy.targets
        roomy.scheduler.run_once(target.name)
        assert node_series(roomy) > 50 and roomy.store.latest(["up"])[0][2] == 1.0
        roomy.store.close()


def test_a_scrape_that_would_pass_the_series_cap_is_refused_whole(tmp_path):
    with node_exporter() as url:
        runtime = scraping(tmp_path, url, store__max_series="120")
        [target] = runtime.targets
        before = runtime.store.series_count
        runtime.scheduler.run_once(target.name)
        assert node_series(runtime) == 0
        assert runtime.store.latest(["up"])[0][2] == 0.0
        assert "may hold 120 (store.max_series)" in target.last_error
        assert f"the store holds {before:,} series" in target.last_error

        with serving(runtime) as pb:  # a push that would pass it gets 422 naming the cap and the count
            body = {"name": "shop_orders_total", "type": "counter", "labels": ["order"]}
            assert pb.call("POST", "/metrics/custom/register", body).status_code == 201
            many = [
                {"name": "shop_orders_total", "labels": {"order": str(i)}, "value": 1} for i in range(200)
            ]
            answer = pb.call("POST", "/metrics/custom/record", {"samples": many})
            assert answer.status_code == 422
            assert "may hold 120 (store.max_series)" in answer.json()["error"]
            latest = pb.call("GET", "/metrics/latest", params={"query": "shop_orders_total"})
            assert latest.json()["series"] == []
        runtime.store.close()
