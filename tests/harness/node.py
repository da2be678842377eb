"""A single-node Kubernetes cluster that runs Pods, for the end-to-end test (make e2e-cluster).

The envtest control plane (tests/harness/kube.py, listening on the node's bridge) plus
kube-scheduler, kube-controller-manager with every default controller (Deployments,
ReplicaSets, Endpoints, ServiceAccounts, the root CA ConfigMap…), kubelet on containerd + runc
with a CNI bridge, and kube-proxy in iptables mode. The Kubernetes binaries come from the
pinned module (`make cluster-bin`), containerd, runc and the CNI plugins from Debian
(`make deps-containers`); images are loaded into containerd's k8s.io namespace directly, with
no registry. What differs from a real node, and why, is in docs/cluster.md.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.harness.kube import (
    STOP_TIMEOUT,
    ApiError,
    ControlPlane,
    envtest_bin_dir,
    start_control_plane,
    tool_cache,
)
from tests.harness.processes import Child, free_port
from tests.harness.servers import ServerError

BRIDGE = "xch0"
POD_CIDR = "10.244.0.0/24"
# The bridge's own address: the API server (and the tests' Redis and PostgreSQL) listen here,
# which Pods reach directly and through the kubernetes Service.
NODE_IP = "10.244.0.1"
NODE_NAME = "xch-node"
CNI_BIN = Path("/usr/lib/cni")
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for the CRI's images and containers
READY_TIMEOUT = 120.0


def _binary(name: str) -> str:
    path = envtest_bin_dir() / name
    if not path.exists():
        raise ServerError(f"{path} is missing: run `make cluster-bin`")
    return str(path)


def run(*command: str) -> str:
    """Run a setup command; its output, or ServerError with its stderr."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def cluster_cache() -> Path:
    """containerd's content and snapshots, kept between runs: an image loaded once stays."""
    return tool_cache().parent / "cluster"


@contextmanager
def _bridge() -> Iterator[None]:
    """The Pods' bridge with the node's address on it, made before the API server starts
    (it listens there); the CNI bridge plugin then attaches each Pod to it."""
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        run("ip", "link", "add", BRIDGE, "type", "bridge")
    try:
        addresses = run("ip", "-4", "-o", "addr", "show", "dev", BRIDGE)
        if f" {NODE_IP}/" not in addresses:
            run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        yield
    finally:
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


def _unmount_under(*roots: Path) -> None:
    """Unmount what kubelet (Secrets, projected tokens) and containerd (rootfs, shm, network
    namespaces) left mounted under `roots`, deepest first, so the directories can go."""
    prefixes = tuple(f"{root.resolve()}/" for root in roots)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefixes)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def _containerd_config(base_dir: Path, pause_image: str) -> Path:
    config = f"""version = 2
root = "{cluster_cache() / "containerd"}"
state = "{base_dir / "containerd-state"}"
[grpc]
  address = "{base_dir / "containerd.sock"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  # This sandbox lacks CAP_SYS_RESOURCE: runc may not lower a process's OOM score below
  # containerd's own, which kubelet asks for the pause and Guaranteed containers.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{base_dir / "cni"}"
"""
    (base_dir / "cni").mkdir()
    network = {
        "cniVersion": "1.0.0",
        "name": "xch",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    # Service addresses are outside the Pod network: through the node.
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(base_dir / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (base_dir / "cni" / "10-xch.conflist").write_text(json.dumps(network))
    path = base_dir / "containerd.toml"
    path.write_text(config)
    return path


def _kubelet_config(base_dir: Path, socket: Path) -> Path:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # Only the API server reaches the kubelet (logs, exec, port-forward), on the bridge.
        "address": NODE_IP,
        "port": free_port(NODE_IP),
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        # cgroup v1 as this sandbox has it (hybrid); no QoS hierarchy or node-allocatable
        # enforcement, which need cgroup writes the sandbox does not allow everywhere.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        # No KUBE-FIREWALL and canary chains in the host's iptables: kube-proxy's are cleaned
        # up at the end (kube-proxy --cleanup); kubelet's would stay.
        "makeIPTablesUtilChains": False,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "podLogsDir": str(base_dir / "pod-logs"),
        # The test's images are loaded once, never pulled: never collect or evict them.
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%"},
        "localStorageCapacityIsolation": False,
        "serializeImagePulls": False,
        "resolvConf": "/etc/resolv.conf",
        "clusterDNS": [NODE_IP],
        "clusterDomain": "cluster.local",
    }
    path = base_dir / "kubelet.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class ServiceDns:
    """The cluster's DNS, the smallest that serves this test: A records for Services by their
    names `<service>.<namespace>.svc[.cluster.local]` (their ClusterIP, looked up in the API
    server on each query), NXDOMAIN for every other name, on NODE_IP:53 (kubelet's
    clusterDNS). CoreDNS is not built here; nothing in the platform needs more than this."""

    def __init__(self, plane: ControlPlane) -> None:
        self._admin = plane.admin()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((NODE_IP, 53))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="service-dns", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self._socket.recvfrom(512)
            except TimeoutError:
                continue
            answer = self._answer(query)
            if answer is not None:
                self._socket.sendto(answer, client)

    def _cluster_ip(self, name: str) -> str | None:
        name = name.lower().removesuffix(".").removesuffix(".cluster.local")
        parts = name.split(".")
        if len(parts) != 3 or parts[2] != "svc":
            return None
        try:
            service = self._admin.get(f"/api/v1/namespaces/{parts[1]}/services/{parts[0]}")
        except ApiError:
            return None
        ip = ((service or {}).get("spec") or {}).get("clusterIP")
        return ip if ip and ip != "None" else None

    def _answer(self, query: bytes) -> bytes | None:
        """The response to one query (one question, as resolvers send), or None if malformed."""
        if len(query) < 17:
            return None
        labels, offset = [], 12
        while offset < len(query) and query[offset] != 0:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        end = offset + 5
        if end > len(query):
            return None
        qtype = struct.unpack("!H", query[offset + 1 : offset + 3])[0]
        ip = self._cluster_ip(".".join(labels))
        # NXDOMAIN for names that are not Services; for a Service, its A record, and no
        # record (NOERROR) for the other types resolvers ask (AAAA).
        flags = 0x8180 if ip is not None else 0x8183
        answers = b""
        if ip is not None and qtype == 1:
            answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(ip)
        header = struct.pack(
            "!HHHHHH", int.from_bytes(query[:2]), flags, 1, int(bool(answers)), 0, 0
        )
        return header + query[12:end] + answers


@dataclass
class Node:
    """The running cluster: its control plane, the node's processes and where they log."""

    base_dir: Path
    plane: ControlPlane
    socket: Path
    started_in_s: float = 0.0
    images_loaded_in_s: float = 0.0

    def ctr(self, *args: str) -> str:
        return run("ctr", "--address", str(self.socket), "--namespace", K8S_NAMESPACE, *args)

    def kubectl(self, *args: str, timeout: float = 120.0, input: str | None = None) -> str:
        done = subprocess.run(
            [_binary("kubectl"), "--kubeconfig", str(self.plane.kubeconfig_path), *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise ServerError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def pod_logs(self, namespace: str, pod: str) -> str:
        """Every container log of the Pods whose names start with `pod`, from the node's log
        directory."""
        logs = sorted((self.base_dir / "pod-logs").glob(f"{namespace}_{pod}*/*/*.log"))
        return "\n".join(f"== {path}\n{path.read_text()[-4000:]}" for path in logs)

    def clear_containers(self) -> None:
        """Kill and remove every container in containerd's k8s.io namespace (a run that ended
        without kubelet cleaning up leaves them in the cached root)."""
        for task in self.ctr("tasks", "ls", "-q").split():
            subprocess.run(
                ["ctr", "--address", str(self.socket), "-n", K8S_NAMESPACE,
                 "tasks", "rm", "-f", task],
                capture_output=True,
                check=False,
            )  # fmt: skip
        containers = self.ctr("containers", "ls", "-q").split()
        if containers:
            self.ctr("containers", "rm", *containers)


def load_images(node: Node, images: Sequence[tuple[str, str]], archive_dir: Path) -> None:
    """Load (built, cluster) image pairs into containerd as `cluster`, from the builder that
    holds `built` (docker, podman or buildah). An image whose ID containerd already holds
    under that name (cluster_cache()/loaded.json) is not loaded again."""
    builder = image_builder()
    record = cluster_cache() / "loaded.json"
    loaded: dict[str, str] = json.loads(record.read_text()) if record.exists() else {}
    present = set(node.ctr("images", "ls", "-q").split())
    for built, cluster in images:
        image_id = run(builder, "images", "-q", "--no-trunc", built).split()[0]
        if loaded.get(cluster) == image_id and cluster in present:
            continue
        archive = archive_dir / "image.tar"
        if builder == "docker":
            run("docker", "tag", built, cluster)
            run("docker", "save", "-o", str(archive), cluster)
        else:
            run(builder, "push", "--quiet", built, f"docker-archive:{archive}:{cluster}")
        node.ctr("images", "import", str(archive))
        archive.unlink()
        loaded[cluster] = image_id
        record.write_text(json.dumps(loaded, indent=2))


def image_builder() -> str:
    """The tool `make images` built with: docker where its engine answers, else podman, else
    buildah (scripts/images.sh)."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    ):
        return "docker"
    for tool in ("podman", "buildah"):
        if shutil.which(tool):
            return tool
    raise ServerError("no docker, podman or buildah: run `make deps-containers`")


def _wait_node_ready(plane: ControlPlane, kubelet: Child) -> None:
    def ready() -> bool:
        node = plane.admin().get(f"/api/v1/nodes/{NODE_NAME}")
        conditions = ((node or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    kubelet.wait_until(ready, f"node {NODE_NAME} Ready", READY_TIMEOUT)


@contextmanager
def running_node(pause_image: str, prefix: str = "xch-node-") -> Iterator[Node]:
    """The whole single-node cluster in a throw-away directory; everything it started is
    stopped, unmounted and removed at the end (the containerd root stays, as a cache)."""
    base_dir = Path(tempfile.mkdtemp(prefix=prefix))
    started = time.monotonic()
    cluster_cache().mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, base_dir, ignore_errors=True)
        stack.callback(_unmount_under, base_dir, cluster_cache())
        stack.callback(_keep_logs, base_dir)
        stack.enter_context(_bridge())
        plane = start_control_plane(
            base_dir / "control-plane",
            host=NODE_IP,
            # The node's name does not resolve here: logs and port-forward go to its address.
            apiserver_args=("--kubelet-preferred-address-types", "InternalIP"),
            controllers="*",
            controller_manager_args=(
                "--root-ca-file", str(base_dir / "control-plane" / "certs" / "apiserver.crt"),
                "--service-account-private-key-file", str(base_dir / "control-plane" / "sa.key"),
                "--use-service-account-credentials=false",
            ),
        )  # fmt: skip
        stack.callback(plane.stop)
        node = _start_node(stack, base_dir, plane, pause_image)
        node.started_in_s = time.monotonic() - started
        yield node


def _keep_logs(base_dir: Path) -> None:
    """Every process's and Pod's log of the last run, kept in the cache for a look after."""
    kept = cluster_cache() / "last-run-logs"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(base_dir, kept, ignore=lambda _, names: [n for n in names if n in _NOT_LOGS])


# What _keep_logs leaves out: state, sockets and the kubelet's volumes.
_NOT_LOGS = {
    "containerd-state",
    "containerd.sock",
    "containerd.sock.ttrpc",
    "kubelet",
    "etcd",
    "cni-ipam",
}


def _start_node(stack: ExitStack, base_dir: Path, plane: ControlPlane, pause_image: str) -> Node:
    kubeconfig = str(plane.kubeconfig_path)
    socket = base_dir / "containerd.sock"
    containerd = Child(
        ["containerd", "--config", str(_containerd_config(base_dir, pause_image))],
        base_dir / "containerd.log",
    )
    containerd.start()
    stack.callback(containerd.stop, [signal.SIGTERM], STOP_TIMEOUT)
    containerd.wait_until(socket.exists, "containerd", 30.0)
    node = Node(base_dir, plane, socket)
    node.clear_containers()
    # After kubelet stops (callbacks run last-in first-out): its Pods' containers go too.
    stack.callback(node.clear_containers)
    dns = ServiceDns(plane)
    stack.callback(dns.stop)
    scheduler = Child(
        [_binary("kube-scheduler"), "--kubeconfig", kubeconfig, "--leader-elect=false",
         "--secure-port=0"],
        base_dir / "kube-scheduler.log",
    )  # fmt: skip
    scheduler.start()
    stack.callback(scheduler.stop, [signal.SIGTERM], STOP_TIMEOUT)
    kubelet = Child(
        [_binary("kubelet"), "--config", str(_kubelet_config(base_dir, socket)),
         "--kubeconfig", kubeconfig, "--root-dir", str(base_dir / "kubelet"),
         "--cert-dir", str(base_dir / "kubelet-pki"), "--hostname-override", NODE_NAME,
         "--node-ip", NODE_IP],
        base_dir / "kubelet.log",
    )  # fmt: skip
    kubelet.start()
    stack.callback(kubelet.stop, [signal.SIGTERM], STOP_TIMEOUT)
    proxy_command = [
        _binary("kube-proxy"), "--kubeconfig", kubeconfig, "--proxy-mode", "iptables",
        "--cluster-cidr", POD_CIDR, "--hostname-override", NODE_NAME,
        "--healthz-bind-address", f"127.0.0.1:{free_port()}",
        "--metrics-bind-address", f"127.0.0.1:{free_port()}",
        # The sandbox refuses the conntrack sysctls; the kernel's defaults do for a test.
        "--conntrack-max-per-core", "0",
    ]  # fmt: skip
    proxy = Child(proxy_command, base_dir / "kube-proxy.log")
    proxy.start()
    stack.callback(_clean_proxy_rules)
    stack.callback(proxy.stop, [signal.SIGTERM], STOP_TIMEOUT)
    _wait_node_ready(plane, kubelet)
    return node


def _clean_proxy_rules() -> None:
    """kube-proxy's iptables chains out of the host's tables: what --cleanup removes, and
    KUBE-FIREWALL (localhost protection for node ports), which it leaves."""
    commands = [
        [_binary("kube-proxy"), "--cleanup", "--proxy-mode", "iptables"],
        ["iptables", "-D", "INPUT", "-j", "KUBE-FIREWALL"],
        ["iptables", "-D", "OUTPUT", "-j", "KUBE-FIREWALL"],
        ["iptables", "-F", "KUBE-FIREWALL"],
        ["iptables", "-X", "KUBE-FIREWALL"],
    ]
    for command in commands:
        subprocess.run(command, capture_output=True, check=False)
