"""The Market CRD through Helm, on a control plane of its own (a CRD is cluster-wide): `helm
upgrade` upgrades it, `helm uninstall` keeps it and the Markets, and a CRD installed by the
chart's former crds/ directory (which Helm never upgraded) is taken over by the documented
one-time step."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.kube import ControlPlane, Rest, running_control_plane
from tests.harness.operator import CRD_FILE, EXAMPLE, markets_path, wait_for
from tests.helm.chart import CHART, Helm, HelmError
from tests.helm.cluster import Applier

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/markets.exchange.dev"
OLD_COLUMN = "Ready"
"""The printer column the older CRD of these tests lacks."""


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with running_control_plane("xch-crd-kube-") as plane:
        yield plane


@pytest.fixture
def cluster_helm(helm: Helm, plane: ControlPlane) -> Helm:
    return Helm(helm.binary, helm.home, kubeconfig=plane.kubeconfig_path)


def _old_crd() -> dict[str, Any]:
    """The CRD as an older operator had it: one printer column fewer."""
    crd: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    version = crd["spec"]["versions"][0]
    version["additionalPrinterColumns"] = [
        column for column in version["additionalPrinterColumns"] if column["name"] != OLD_COLUMN
    ]
    return crd


def _old_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "exchange"
    shutil.copytree(CHART, chart)
    (chart / "files" / CRD_FILE.name).write_text(yaml.safe_dump(_old_crd()))
    return chart


def _columns(admin: Rest) -> list[str]:
    live = admin.get(CRD_PATH)
    assert live is not None, "no CRD"
    return [column["name"] for column in live["spec"]["versions"][0]["additionalPrinterColumns"]]


def _new_columns() -> list[str]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    return [column["name"] for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def _create_market(admin: Rest, namespace: str) -> str:
    market = yaml.safe_load(EXAMPLE.read_text())
    wait_for(lambda: admin.get(f"/api/v1/namespaces/{namespace}") is not None, what=namespace)
    admin.create(markets_path(namespace), market)
    return markets_path(namespace, market["metadata"]["name"])


def test_upgrade_upgrades_the_crd_and_uninstall_keeps_it(
    cluster_helm: Helm, plane: ControlPlane, tmp_path: Path
) -> None:
    admin = plane.admin()
    release = ("up", "--namespace", "up")
    cluster_helm.run("install", *release, str(_old_chart(tmp_path)), "--create-namespace")
    assert OLD_COLUMN not in _columns(admin)
    market = _create_market(admin, "up")

    cluster_helm.run("upgrade", *release, str(CHART))
    assert _columns(admin) == _new_columns()
    assert admin.get(market) is not None

    cluster_helm.run("uninstall", *release)
    assert _columns(admin) == _new_columns()
    assert admin.get(market) is not None, "the Market went with the release"


def test_a_crd_from_the_former_crds_directory_is_adopted(
    cluster_helm: Helm, plane: ControlPlane
) -> None:
    """Installed by crds/, the CRD has no Helm owner: the upgrade refuses it until it is
    labelled and annotated as docs/operations.md says (kubectl label / annotate)."""
    admin = plane.admin()
    Applier(admin).apply(_old_crd(), "")
    admin.patch(CRD_PATH, {"metadata": {
        "labels": {"app.kubernetes.io/managed-by": None},
        "annotations": {"meta.helm.sh/release-name": None,
                        "meta.helm.sh/release-namespace": None},
    }})  # fmt: skip
    assert OLD_COLUMN not in _columns(admin)
    install = ("upgrade", "--install", "adopt", str(CHART), "--namespace", "adopt",
               "--create-namespace")  # fmt: skip
    with pytest.raises(HelmError, match="invalid ownership metadata"):
        cluster_helm.run(*install)

    admin.patch(CRD_PATH, {"metadata": {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "adopt",
                        "meta.helm.sh/release-namespace": "adopt"},
    }})  # fmt: skip
    cluster_helm.run(*install)
    assert _columns(admin) == _new_columns()
