"""A real Kubernetes control plane for tests: etcd and kube-apiserver as local processes.

The envtest approach (controller-runtime's), without Docker: `make envtest-bin` builds both
binaries from source into a per-machine cache; this module starts a fresh etcd and
kube-apiserver on free loopback ports with throw-away directories, waits for /readyz and
writes a kubeconfig for an admin token (group system:masters). Authorization is RBAC, so a
ServiceAccount token sees exactly what its Roles grant. kube-controller-manager runs only the
namespace and garbage-collector controllers: deleting a namespace deletes what is in it, and
owner references collect children. No kubelet and no Deployment controller: Deployments stay
as written, and tests set their status through the status subresource.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.harness.processes import HOST, ROOT, Child, free_port
from tests.harness.servers import START_ATTEMPTS, ServerError

VERSIONS_FILE = ROOT / "tools" / "envtest" / "versions"
ADMIN_USER = "envtest-admin"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/24"


def tool_cache() -> Path:
    """Where the Makefile builds the Go tools (the control plane, helm): the per-machine cache."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "exchange" / "envtest"


def envtest_bin_dir() -> Path:
    """Where `make envtest-bin` put the binaries: EXCHANGE_ENVTEST_BIN, or its default cache."""
    override = os.environ.get("EXCHANGE_ENVTEST_BIN")
    if override:
        return Path(override)
    return tool_cache() / VERSIONS_FILE.read_text().strip() / "bin"


def _binary(name: str) -> Path:
    path = envtest_bin_dir() / name
    if not path.exists():
        raise ServerError(f"{path} is missing: run `make envtest-bin`")
    return path


STOP_TIMEOUT = 20.0


def _etcd(data_dir: Path) -> tuple[Child, str]:
    client_url = f"http://{HOST}:{free_port()}"
    peer_url = f"http://{HOST}:{free_port()}"
    command = [
        str(_binary("etcd")),
        "--name", "envtest",
        "--data-dir", str(data_dir / "etcd"),
        "--listen-client-urls", client_url,
        "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url,
        "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"envtest={peer_url}",
        "--unsafe-no-fsync",
        "--log-level", "warn",
    ]  # fmt: skip
    return Child(command, data_dir / "etcd.log"), client_url


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerError(f"openssl {' '.join(args)} failed: {done.stderr}")


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    """A fresh RSA key pair that signs and verifies ServiceAccount tokens."""
    private, public = directory / "sa.key", directory / "sa.pub"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", str(private))  # fmt: skip
    _openssl("pkey", "-in", str(private), "-pubout", "-out", str(public))
    return private, public


def _client_ca(directory: Path) -> Path:
    """A CA the API server trusts for client certificates (kubeconfigs as kind writes them)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-keyout", str(directory / "client-ca.key"),
             "-out", str(directory / "client-ca.crt"), "-subj", "/CN=xch-test-client-ca",
             "-days", "7")  # fmt: skip
    return directory / "client-ca.crt"


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver pair and the admin credentials to reach them."""

    base_dir: Path
    port: int
    admin_token: str
    etcd: Child
    apiserver: Child
    controller_manager: Child | None = None
    # Where the API server listens and what it advertises (the node harness: its bridge).
    host: str = HOST
    ca_file: Path = field(init=False)

    def __post_init__(self) -> None:
        # The apiserver writes a self-signed serving certificate (and its CA) on start.
        self.ca_file = self.base_dir / "certs" / "apiserver.crt"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.base_dir / "kubeconfig"

    def kubeconfig(self, token: str, user: str) -> dict[str, Any]:
        """A kubeconfig for this API server, authenticating with `token`."""
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {"server": self.server, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "envtest", "user": user}}],
            "current-context": user,
        }

    def write_kubeconfig(self, path: Path, token: str, user: str) -> Path:
        path.write_text(yaml.safe_dump(self.kubeconfig(token, user)))
        return path

    def write_certificate_kubeconfig(self, path: Path, user: str, group: str) -> Path:
        """A kubeconfig that logs in with a client certificate for `user` in `group`, signed
        by the API server's client CA, its certificate and key inline (as kind writes them)."""
        ca = self.base_dir / "client-ca"
        key, request, cert = (path.with_suffix(suffix) for suffix in (".key", ".csr", ".crt"))
        _openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-keyout", str(key), "-out", str(request),
                 "-subj", f"/O={group}/CN={user}")  # fmt: skip
        _openssl("x509", "-req", "-in", str(request), "-CA", str(ca / "client-ca.crt"),
                 "-CAkey", str(ca / "client-ca.key"), "-CAcreateserial", "-out", str(cert),
                 "-days", "7")  # fmt: skip
        config = self.kubeconfig("", user)
        config["users"][0]["user"] = {
            "client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
            "client-key-data": base64.b64encode(key.read_bytes()).decode(),
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def ready(self) -> bool:
        if not self.ca_file.exists():
            return False
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    def admin(self) -> Rest:
        return Rest(self.server, self.admin_token, self.ca_file)

    def start_controller_manager(self, controllers: str, *extra: str) -> None:
        command = [
            str(_binary("kube-controller-manager")),
            "--kubeconfig", str(self.kubeconfig_path),
            "--controllers", controllers,
            "--leader-elect=false",
            "--secure-port=0",
            *extra,
        ]  # fmt: skip
        self.controller_manager = Child(command, self.base_dir / "kube-controller-manager.log")
        process = self.controller_manager.start()
        if process.poll() is not None:
            raise ServerError(f"kube-controller-manager exited with code {process.returncode}")

    def stop(self) -> None:
        for child in (self.controller_manager, self.apiserver, self.etcd):
            if child is not None:
                child.stop([signal.SIGTERM], STOP_TIMEOUT)


def _apiserver_command(base_dir: Path, port: int, etcd_url: str, host: str) -> list[str]:
    private, public = _service_account_keys(base_dir)
    return [
        str(_binary("kube-apiserver")),
        "--etcd-servers", etcd_url,
        "--bind-address", host,
        "--advertise-address", host,
        "--secure-port", str(port),
        "--cert-dir", str(base_dir / "certs"),
        "--service-account-issuer", f"https://{host}:{port}",
        "--service-account-key-file", str(public),
        "--service-account-signing-key-file", str(private),
        "--authorization-mode", "RBAC",
        "--service-cluster-ip-range", SERVICE_CLUSTER_IP_RANGE,
        "--token-auth-file", str(base_dir / "tokens.csv"),
        "--client-ca-file", str(_client_ca(base_dir / "client-ca")),
        "--allow-privileged=true",
        # Kubernetes' own slow-request protection only delays a single test client.
        "--enable-priority-and-fairness=false",
    ]  # fmt: skip


class ApiError(Exception):
    """The API server refused a request: its HTTP status and Status object."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('message', body)}")
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


@dataclass
class Rest:
    """A plain JSON client of one API server with one bearer token (the tests' client)."""

    server: str
    token: str
    ca_file: Path

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        request = urllib.request.Request(
            self.server + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                result: dict[str, Any] = json.loads(response.read() or b"{}")
                return result
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, json.loads(exc.read() or b"{}")) from None

    def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        try:
            return self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def delete(self, path: str) -> None:
        try:
            self.request("DELETE", path)
        except ApiError as exc:
            if exc.status != 404:
                raise


def start_control_plane(
    base_dir: Path,
    timeout: float = 90.0,
    host: str = HOST,
    apiserver_args: tuple[str, ...] = (),
    controllers: str = "namespace,garbagecollector",
    controller_manager_args: tuple[str, ...] = (),
) -> ControlPlane:
    """Start etcd and kube-apiserver with data under `base_dir`; return when /readyz is 200.

    `host` is the address the API server listens on and advertises; `apiserver_args`,
    `controllers` (kube-controller-manager's --controllers) and `controller_manager_args` are
    for the node harness (tests/harness/node.py), which runs Pods."""
    base_dir.mkdir(parents=True, exist_ok=True)
    admin_token = secrets.token_hex(16)
    (base_dir / "tokens.csv").write_text(f'{admin_token},{ADMIN_USER},1,"system:masters"\n')
    etcd, etcd_url = _etcd(base_dir)
    etcd_process = etcd.start()
    try:
        for attempt in range(START_ATTEMPTS):
            port = free_port(host)
            command = [*_apiserver_command(base_dir, port, etcd_url, host), *apiserver_args]
            apiserver = Child(command, base_dir / "kube-apiserver.log")
            plane = ControlPlane(base_dir, port, admin_token, etcd, apiserver, host=host)
            apiserver.start()
            try:
                apiserver.wait_until(plane.ready, f"kube-apiserver on port {port}", timeout)
            except ServerError:
                apiserver.stop([signal.SIGTERM], STOP_TIMEOUT)
                if etcd_process.poll() is not None or attempt + 1 == START_ATTEMPTS:
                    raise
                continue
            plane.write_kubeconfig(plane.kubeconfig_path, admin_token, ADMIN_USER)
            try:
                plane.start_controller_manager(controllers, *controller_manager_args)
            except BaseException:
                apiserver.stop([signal.SIGTERM], STOP_TIMEOUT)
                raise
            return plane
    except BaseException:
        etcd.stop([signal.SIGTERM], STOP_TIMEOUT)
        raise
    raise AssertionError("unreachable")


@contextmanager
def running_control_plane(prefix: str) -> Iterator[ControlPlane]:
    """A control plane in a throw-away directory under /tmp named `prefix`…, stopped and
    removed at the end."""
    base_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        plane = start_control_plane(base_dir)
        try:
            yield plane
        finally:
            plane.stop()
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
