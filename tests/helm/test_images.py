"""The Dockerfiles agree with the chart and the operator: a target for every image the chart
and the operator name, the uid the Pods run as, exact base image tags. (The images themselves
are built and run by `make e2e-cluster`, tests/cluster.)"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helm.chart import CHART, RELEASE, ROOT, Helm, find, pod_specs
from xch_operator.resources import RUN_AS_USER

PYTHON_DOCKERFILE = ROOT / "images" / "python" / "Dockerfile"
FRONTEND_DOCKERFILE = ROOT / "images" / "frontend" / "Dockerfile"


def _targets() -> set[str]:
    return set(re.findall(r"^FROM runtime AS (\S+)$", PYTHON_DOCKERFILE.read_text(), re.M))


def _component(image: str) -> str:
    return image.rsplit("/", 1)[-1].split(":")[0]


def test_every_platform_image_has_a_target(helm: Helm) -> None:
    objects = helm.template()
    images = {c["image"] for _, pod in pod_specs(objects) for c in pod["containers"]}
    # And the images the chart tells the operator to run engines and market makers from.
    operator = find(objects, "Deployment", f"{RELEASE}-operator")
    env = operator["spec"]["template"]["spec"]["containers"][0]["env"]
    images |= {e["value"] for e in env if e["name"].endswith("_IMAGE")}
    platform = {_component(image) for image in images if image.startswith("exchange/")}
    assert platform == _targets() | {"frontend"}


def test_images_run_as_the_chart_uid() -> None:
    text = PYTHON_DOCKERFILE.read_text()
    assert f"--uid {RUN_AS_USER}" in text
    assert f"USER {RUN_AS_USER}:{RUN_AS_USER}" in text
    assert "runAsUser: {{ . }}" in (CHART / "templates" / "_helpers.tpl").read_text()
    assert "USER 101:101" in FRONTEND_DOCKERFILE.read_text()


def _base_arguments(dockerfile: Path) -> dict[str, str]:
    """The ARGs every FROM line names, with their defaults: each stage's base is one."""
    text = dockerfile.read_text()
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    used = re.findall(r"^FROM \$\{(\w+)\}", text, re.M)
    assert used and all(name in defaults for name in used)
    return {name: defaults[name] for name in used}


def test_base_images_have_exact_tags() -> None:
    python = PYTHON_DOCKERFILE.read_text()
    version = re.search(r"^ARG PYTHON_VERSION=(\S+)$", python, re.M)
    assert version is not None and re.fullmatch(r"3\.11\.\d+", version.group(1))
    assert _base_arguments(PYTHON_DOCKERFILE) == {
        "BUILD_IMAGE": "python:${PYTHON_VERSION}-bookworm",
        "BASE_IMAGE": "python:${PYTHON_VERSION}-slim-bookworm",
    }
    bases = _base_arguments(FRONTEND_DOCKERFILE)
    assert set(bases) == {"NODE_IMAGE", "NGINX_IMAGE"}
    assert all(re.search(r":\d+\.\d+\.\d+-", base) for base in bases.values())
