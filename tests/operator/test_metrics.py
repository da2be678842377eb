"""The operator's per-Market metrics, scraped from its /metrics as Prometheus does."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.harness.operator import Kube, OperatorProcess, market_manifest, wait_for

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(operator: OperatorProcess) -> Series:
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def market_series(series: Series, metric: str, namespace: str, name: str) -> dict[str, float]:
    """The Market's samples of `metric`, keyed by their other labels ("k=v,...")."""
    found = {}
    for (sample, labels), value in series.items():
        rest = dict(labels)
        market = (rest.pop("namespace", None), rest.pop("market", None))
        if sample == metric and market == (namespace, name):
            found[",".join(f"{k}={v}" for k, v in sorted(rest.items()))] = value
    return found


def phases(operator: OperatorProcess, namespace: str, name: str) -> dict[str, float]:
    return market_series(scrape(operator), "xch_operator_market_phase", namespace, name)


def test_phase_and_conditions_per_market(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    name = "metric-usd"
    kube.create_market(namespace, market_manifest(name))
    kube.wait_conditions(namespace, name, QueueReady="True", StorageReady="True")
    wait_for(lambda: phases(operator, namespace, name).get("phase=Degraded") == 1,
             what="phase Degraded in the metrics")  # fmt: skip
    conditions = market_series(scrape(operator), "xch_operator_market_condition", namespace, name)
    assert conditions["condition=EngineReady,status=False"] == 1
    assert conditions["condition=EngineReady,status=True"] == 0
    assert conditions["condition=QueueReady,status=True"] == 1
    assert conditions["condition=Ready,status=False"] == 1

    kube.set_ready(namespace, f"engine-{name}")
    kube.set_ready(namespace, f"mm-{name}")
    wait_for(lambda: phases(operator, namespace, name).get("phase=Ready") == 1,
             what="phase Ready in the metrics")  # fmt: skip
    now = phases(operator, namespace, name)
    assert sum(now.values()) == 1, now  # one phase at a time
    conditions = market_series(scrape(operator), "xch_operator_market_condition", namespace, name)
    assert conditions["condition=Ready,status=True"] == 1
    assert conditions["condition=Ready,status=False"] == 0

    kube.delete_market(namespace, name)
    wait_for(lambda: kube.get_market(namespace, name) is None, timeout=60, what="deleted")
    wait_for(lambda: not phases(operator, namespace, name), what="its series dropped")


def test_reconcile_errors_per_market(kube: Kube, namespace: str, operator: OperatorProcess) -> None:
    """A child name taken by an object the Market does not own: each reconcile fails."""
    name = "taken-usd"
    kube.rest.create(f"/api/v1/namespaces/{namespace}/configmaps",
                     {"metadata": {"name": f"market-{name}"}, "data": {}})  # fmt: skip
    kube.create_market(namespace, market_manifest(name))

    def errors() -> dict[str, float]:
        series = scrape(operator)
        metric = "xch_operator_market_reconcile_errors_total"
        return market_series(series, metric, namespace, name)

    wait_for(lambda: errors().get("error=NotOurs", 0) >= 1,
             what=f"NotOurs counted\n{operator.log_tail()}")  # fmt: skip
    assert all(key == "error=NotOurs" for key in errors())
