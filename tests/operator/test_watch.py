"""The operator's watches end and are made again (nolar/kopf#585): a watch with no bound can go
silent forever behind a proxy that dropped its connection, and the operator then sees no
change again. With EXCHANGE_OPERATOR_WATCH_SERVER_TIMEOUT the API server ends each watch
after that many seconds (counted on the real API server's own metrics); the operator watches
again from where it was, and a Market made or changed afterwards is reconciled at once. With
EXCHANGE_OPERATOR_WATCH_CLIENT_TIMEOUT the operator gives up on a watch whose connection a
proxy between it and the API server silently forgot (the server's end never arrives)."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import redis.asyncio
import yaml

from tests.harness.kube import ControlPlane
from tests.harness.operator import Kube, market_manifest, start_operator, wait_for
from tests.harness.processes import HOST
from tests.harness.servers import RedisServer

WATCH_SERVER_SECONDS = 2
"""Short enough for several watches to end within the test, long enough to see events."""
PROMPTLY = 10.0
"""Seconds in which a change must be reconciled (on a loaded machine): only a watch brings
it, since the drift timer (3 s here) runs over the Markets as a watch last delivered them.
A watch gone silent would leave it unseen for good (or until Kopf's own inactivity timeout,
70 s)."""
ENDED_WATCH = re.compile(
    r'^apiserver_request_total\{(?=[^}]*resource="markets")(?=[^}]*verb="WATCH")[^}]*\} (\S+)$',
    re.MULTILINE,
)


def ended_market_watches(plane: ControlPlane) -> int:
    """Watches of Markets the API server has ended (it counts a request once it is over)."""
    request = urllib.request.Request(
        f"{plane.server}/metrics", headers={"Authorization": f"Bearer {plane.admin_token}"}
    )
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        text = response.read().decode()
    return sum(int(float(count)) for count in ENDED_WATCH.findall(text))


async def test_watches_end_and_are_made_again_and_markets_still_reconcile_promptly(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    timeouts = {
        "EXCHANGE_OPERATOR_WATCH_SERVER_TIMEOUT": str(WATCH_SERVER_SECONDS),
        "EXCHANGE_OPERATOR_WATCH_CLIENT_TIMEOUT": str(2 * WATCH_SERVER_SECONDS),
    }
    before = ended_market_watches(control_plane)
    operator = start_operator(
        operator_kubeconfig, namespace, redis_server.url, storage_dsn, tmp_path, timeouts
    )
    try:
        # Two watches ended: the first by its timeout, then the one made after it.
        wait_for(
            lambda: ended_market_watches(control_plane) >= before + 2,
            timeout=6 * WATCH_SERVER_SECONDS,
            what=f"watches of Markets ended and made again\n{operator.log_tail()}",
        )

        name = "rewatch-usd"
        kube.create_market(namespace, market_manifest(name))
        kube.wait_conditions(namespace, name, timeout=PROMPTLY, QueueReady="True")
        kube.wait_conditions(namespace, name, StorageReady="True")
        kube.set_ready(namespace, f"engine-{name}")
        kube.set_ready(namespace, f"mm-{name}")
        kube.wait_phase(namespace, name, "Ready")

        ended = ended_market_watches(control_plane)
        wait_for(lambda: ended_market_watches(control_plane) > ended,
                 timeout=3 * WATCH_SERVER_SECONDS, what="another watch ended")  # fmt: skip
        changed = time.monotonic()
        kube.patch_market(namespace, name, {"spec": {"trading": "Halted"}})
        kube.wait_phase(namespace, name, "Halted", timeout=PROMPTLY)
        assert time.monotonic() - changed < PROMPTLY
        assert operator.running(), operator.log_tail()
    finally:
        operator.terminate()


class ForgetfulProxy:
    """A TCP relay to the API server that can forget the connections it carries, as a load
    balancer or NAT that dropped their state does: after `forget()` nothing more is relayed
    on them and nothing is closed, so a watch on one waits forever. A forgotten connection
    the client sends a new request on is reset (the client retries on a new one, relayed)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server((HOST, 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.forgotten: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def forget(self) -> None:
        with self.lock:
            self.forgotten |= self.open

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for end in self.open:
                _shut(end)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream)
                with self.lock:
                    self.open |= {client, server}
                for source, sink, from_client in ((client, server, True), (server, client, False)):
                    threading.Thread(
                        target=self._pump, args=(source, sink, from_client), daemon=True
                    ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                with self.lock:
                    forgotten = source in self.forgotten
                if not forgotten:
                    sink.sendall(data)
                elif from_client:
                    break  # a new request on a forgotten connection: reset it
        for end in (source, sink):
            _shut(end)


def _shut(end: socket.socket) -> None:
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def forgetful_proxy(
    plane: ControlPlane, kubeconfig: Path, into: Path
) -> Iterator[tuple[ForgetfulProxy, Path]]:
    """The proxy, and `kubeconfig` rewritten (into `into`) to reach the API server through it."""
    proxy = ForgetfulProxy((plane.host, plane.port))
    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://{HOST}:{proxy.port}"
    into.write_text(yaml.safe_dump(config))
    try:
        yield proxy, into
    finally:
        proxy.close()


async def test_a_watch_whose_connection_a_proxy_forgot_is_given_up_and_made_again(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    operator_kubeconfig: Path,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    storage_dsn: str,
    tmp_path: Path,
) -> None:
    timeouts = {
        "EXCHANGE_OPERATOR_WATCH_SERVER_TIMEOUT": str(WATCH_SERVER_SECONDS),
        "EXCHANGE_OPERATOR_WATCH_CLIENT_TIMEOUT": str(2 * WATCH_SERVER_SECONDS),
        # One process and nothing else: the Lease's renewals would only add connections.
        "EXCHANGE_OPERATOR_LEADER_ELECTION": "false",
    }
    with forgetful_proxy(control_plane, operator_kubeconfig, tmp_path / "proxied") as (
        proxy,
        kubeconfig,
    ):
        operator = start_operator(
            kubeconfig, namespace, redis_server.url, storage_dsn, tmp_path, timeouts
        )
        try:
            first = "before-usd"
            kube.create_market(namespace, market_manifest(first))
            kube.wait_conditions(namespace, first, QueueReady="True", StorageReady="True")
            proxy.forget()  # the watches open now (and every idle connection) go silent

            name = "after-usd"
            kube.create_market(namespace, market_manifest(name))
            kube.wait_conditions(namespace, name, timeout=PROMPTLY + 2 * WATCH_SERVER_SECONDS,
                                 QueueReady="True")  # fmt: skip
            assert operator.running(), operator.log_tail()
        finally:
            operator.terminate()
