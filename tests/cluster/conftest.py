"""Fixtures of the end-to-end cluster test (make e2e-cluster): the single-node cluster with the
platform's images loaded, and Redis and PostgreSQL on the node's bridge, which the chart uses
as external ones (docs/cluster.md says why)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.node import NODE_IP, POD_CIDR, Node, load_images, running_node
from tests.harness.servers import (
    PostgresServer,
    RedisServer,
    start_postgres,
    start_redis,
)

REPOSITORY = "exchange"
COMPONENTS = ("engine", "api", "ws", "dbproc", "mm", "operator", "frontend")


def _tag() -> str:
    return os.environ.get("EXCHANGE_IMAGE_TAG", "0.1.0")


def cluster_image(component: str, tag: str) -> str:
    """The name the chart's `exchange/<component>:<tag>` resolves to in containerd."""
    return f"docker.io/{REPOSITORY}/{component}:{tag}"


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    pause_tag = os.environ.get("EXCHANGE_PAUSE_TAG", "v1.34.12")
    pause = cluster_image("pause", pause_tag)
    with running_node(pause) as running, tempfile.TemporaryDirectory() as archives:
        started = time.monotonic()
        images = [(f"{REPOSITORY}/{c}:{_tag()}", cluster_image(c, _tag())) for c in COMPONENTS]
        load_images(running, [*images, (f"{REPOSITORY}/pause:{pause_tag}", pause)], Path(archives))
        running.images_loaded_in_s = time.monotonic() - started
        yield running


@pytest.fixture(scope="session")
def node_redis(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"), host=NODE_IP)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def node_postgres(node: Node) -> Iterator[PostgresServer]:
    """PostgreSQL on the bridge, trusting the Pod network (the test's own throw-away server)."""
    base_dir = Path(tempfile.mkdtemp(prefix="xch-pg-node-"))
    try:
        server = start_postgres(
            base_dir, database="exchange", host=NODE_IP, trusted_networks=(POD_CIDR,)
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
