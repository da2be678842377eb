"""The chart under test: the helm binary `make helm-bin` built, and the chart rendered by it.

helm runs with its config, cache and data directories in a throw-away directory, so the tests
neither read nor write the developer's ~/.config/helm (repositories, plugins, registries).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.harness.kube import tool_cache

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "exchange"
PRODUCTION_VALUES = CHART / "values-production.yaml"
HELM_GO_MOD = ROOT / "tools" / "helm" / "go.mod"
# The Kubernetes version the chart is rendered for offline: the test control plane's.
KUBE_VERSION = "v1.34.0"
RELEASE = "exchange"
# Every optional part switched on, so that checks of a rendering see every template's output.
EVERYTHING = ("ingress.enabled=true", "networkPolicies.enabled=true")


def helm_version() -> str:
    """The helm release tools/helm/go.mod requires (the Makefile reads the same line)."""
    found = re.search(r"^require helm\.sh/helm/v3 (\S+)$", HELM_GO_MOD.read_text(), re.MULTILINE)
    if found is None:
        raise AssertionError(f"{HELM_GO_MOD} requires no helm.sh/helm/v3")
    return found.group(1)


def helm_binary() -> Path:
    """Where `make helm-bin` put helm: EXCHANGE_HELM_BIN, or its default cache."""
    override = os.environ.get("EXCHANGE_HELM_BIN")
    if override:
        return Path(override)
    path = tool_cache() / f"helm-{helm_version()}" / "bin" / "helm"
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `make helm-bin`")
    return path


class HelmError(AssertionError):
    """helm exited with an error; its output says why."""


@dataclass
class Helm:
    """The helm binary with private config, cache and data directories."""

    binary: Path
    home: Path
    kubeconfig: Path | None = None

    def environment(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.environment(),
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise HelmError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def template(
        self,
        *,
        namespace: str = RELEASE,
        values: tuple[Path, ...] = (),
        sets: tuple[str, ...] = (),
        api_versions: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """The chart's objects as `helm template` renders them."""
        args = ["template", RELEASE, str(CHART), "--namespace", namespace,
                "--kube-version", KUBE_VERSION]  # fmt: skip
        for path in values:
            args += ["--values", str(path)]
        for assignment in sets:
            args += ["--set", assignment]
        for version in api_versions:
            args += ["--api-versions", version]
        return [doc for doc in yaml.safe_load_all(self.run(*args).stdout) if doc]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The Pod spec each workload makes, named kind/name: its template, with a StatefulSet's
    claim templates as the volumes its controller adds (the first replica's claims)."""
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            continue
        pod = copy.deepcopy(spec["template"]["spec"])
        for claim in spec.get("volumeClaimTemplates", []):
            claim_name = f"{claim['metadata']['name']}-{obj['metadata']['name']}-0"
            pod.setdefault("volumes", []).append(
                {"name": claim["metadata"]["name"],
                 "persistentVolumeClaim": {"claimName": claim_name}}
            )  # fmt: skip
        yield f"{obj['kind']}/{obj['metadata']['name']}", pod


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"{kind}/{name} is not rendered")
