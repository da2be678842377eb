"""Real Redis, PostgreSQL and PGlite servers for tests, started as local processes.

Each server listens on 127.0.0.1 on a free port and keeps its data in a directory the caller
owns. No Docker and no mocks: what the tests talk to is the same server software the platform
runs on. Each is a `processes.Child` in its own session (see there).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pwd
import secrets
import select
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from launcher import redis_acl
from launcher.servers import redis_ping
from tests.harness.processes import (
    HOST,
    ROOT,
    Child,
    Identity,
    ProcessError,
    end_process,
    free_port,
    log_tail,
)

DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_SUPERUSER = "exchange"
PG_TEST_DATABASE = "exchange_test"
# Users a PostgreSQL server may run as when the tests run as root (PostgreSQL refuses root).
PG_RUN_AS_CANDIDATES = ("exchange", "postgres", "nobody")
START_ATTEMPTS = 5


ServerError = ProcessError


def pg_bin_dir() -> Path:
    """The PostgreSQL binaries: EXCHANGE_PG_BIN if set, else the Debian PostgreSQL 15 path."""
    return Path(os.environ.get("EXCHANGE_PG_BIN", str(DEFAULT_PG_BIN)))


def pg_run_as() -> str | None:
    """The OS user to run PostgreSQL as: None when not root, else the first existing candidate."""
    if os.geteuid() != 0:
        return None
    for name in PG_RUN_AS_CANDIDATES:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServerError(f"running as root and none of the users {PG_RUN_AS_CANDIDATES} exists")


class _ProcessSlot:
    """The mutable part of a frozen server description: its running process, if any."""

    def __init__(self) -> None:
        self.child: Child | None = None


def _password(admin_password: str, user: str) -> str:
    """A user's password on a test server, derived from the admin's: `as_user` needs only the
    admin URL to make any user's."""
    return hmac.new(admin_password.encode(), user.encode(), hashlib.sha256).hexdigest()


def as_user(url: str, user: str) -> str:
    """`url` (a test server's admin URL) as `user`; any other URL unchanged. The harness's
    processes connect through this, so each component runs under its own ACL user."""
    parts = urlsplit(url)
    if parts.username != "admin" or parts.password is None or parts.hostname is None:
        return url
    password = _password(parts.password, user)
    return redis_acl.url(parts.hostname, parts.port or 6379, user, password)


@dataclass(frozen=True)
class RedisServer:
    """A redis-server process with AOF on (appendfsync everysec) and RDB snapshots off, and
    the platform's ACL users (charts/exchange/files/redis-acl.yaml; the default user off).

    `url` is the admin's (tests read and reset everything); `url_for(user)` a component's.
    `stop()` and `start()` keep the port and the data directory, so data written before a
    stop is there after the start, read back from the append-only file.
    """

    host: str
    port: int
    data_dir: Path
    executable: str
    admin_password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    _slot: _ProcessSlot = field(default_factory=_ProcessSlot, repr=False, compare=False)

    @property
    def url(self) -> str:
        return self.url_for("admin")

    def url_for(self, user: str) -> str:
        return redis_acl.url(self.host, self.port, user, self.password(user))

    def password(self, user: str) -> str:
        return self.admin_password if user == "admin" else _password(self.admin_password, user)

    @property
    def acl_file(self) -> Path:
        return self.data_dir / "users.acl"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def running(self) -> bool:
        return self._slot.child is not None and self._slot.child.running

    @property
    def pid(self) -> int:
        process = self._slot.child.process if self._slot.child is not None else None
        if process is None:
            raise ServerError(f"redis-server on port {self.port} is not running")
        return process.pid

    def command(self) -> list[str]:
        return [
            self.executable,
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_file),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--aclfile", str(self.acl_file),
        ]  # fmt: skip

    def ping(self) -> bool:
        """True if the server answers PING with PONG (not while it is still loading)."""
        return redis_ping(self.port, self.password("health"), self.host)

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        passwords = {user: self.password(user) for user in redis_acl.rules()}
        self.acl_file.write_text(redis_acl.acl_file(passwords))
        # It writes its own log (--logfile): its output is not captured.
        child = Child(self.command(), self.log_file, capture=False)
        self._slot.child = child
        child.start()
        try:
            child.wait_until(self.ping, f"redis-server on port {self.port}", timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Redis flushes and fsyncs the AOF, then exits); wait for the process to end."""
        child = self._slot.child
        if child is None:
            return
        child.stop([signal.SIGTERM], timeout)
        self._slot.child = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_redis(data_dir: Path, port: int | None = None, host: str = HOST) -> RedisServer:
    """Start a redis-server found on PATH, on `port` or on a free port of `host`, with data in
    `data_dir`."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise ServerError("redis-server is not on PATH (make deps-system installs it)")
    attempts = 1 if port is not None else START_ATTEMPTS
    for attempt in range(attempts):
        server = RedisServer(
            host, port if port is not None else free_port(host), data_dir, executable
        )
        try:
            server.start()
        except ServerError:
            if attempt + 1 == attempts:
                raise
            continue
        return server
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server (postgres run directly, no pg_ctl) with fsync off, for tests.

    `base_dir` holds `data/` (the cluster), `sock/` (the unix socket) and `postgres.log`.
    When the tests run as root the server runs as `run_as`, which owns `base_dir`.
    """

    host: str
    port: int
    user: str
    database: str
    base_dir: Path
    bin_dir: Path
    run_as: str | None
    _slot: _ProcessSlot = field(default_factory=_ProcessSlot, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def running(self) -> bool:
        return self._slot.child is not None and self._slot.child.running

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
        }
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def run_tool(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL client tool from bin_dir against this server, as the superuser."""
        return subprocess.run(
            [str(self.bin_dir / tool), "-h", self.host, "-p", str(self.port), "-U", self.user,
             *args],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip

    def is_ready(self) -> bool:
        return self.run_tool("pg_isready", "-q", "-d", "postgres").returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            return
        self.socket_dir.mkdir(exist_ok=True)
        _chown_to(self.socket_dir, self.run_as)
        child = Child(
            self.command(), self.log_file, cwd=self.base_dir, identity=_identity(self.run_as)
        )
        self._slot.child = child
        child.start()
        try:
            child.wait_until(self.is_ready, f"postgres on port {self.port}", timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT); wait for the postmaster to end."""
        child = self._slot.child
        if child is None:
            return
        child.stop([signal.SIGINT, signal.SIGQUIT], timeout)
        self._slot.child = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _identity(run_as: str | None) -> Identity:
    if run_as is None:
        return Identity()
    entry = pwd.getpwnam(run_as)
    return Identity(entry.pw_uid, entry.pw_gid, ())


def _chown_to(path: Path, run_as: str | None) -> None:
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def start_postgres(
    base_dir: Path,
    database: str = PG_TEST_DATABASE,
    port: int | None = None,
    host: str = HOST,
    trusted_networks: tuple[str, ...] = (),
) -> PostgresServer:
    """initdb a cluster into `base_dir`/data, start it on `host` and create `database`.
    Clients from `trusted_networks` (CIDRs) are trusted as well as local ones.

    `base_dir` must be reachable by the user PostgreSQL runs as (pytest's own temporary
    directories are private to root, so as root pass a directory under /tmp).
    """
    bin_dir = pg_bin_dir()
    if not (bin_dir / "postgres").exists():
        raise ServerError(f"no PostgreSQL binaries in {bin_dir} (make deps-system installs them)")
    run_as = pg_run_as()
    base_dir.mkdir(parents=True, exist_ok=True)
    _chown_to(base_dir, run_as)
    who = _identity(run_as)
    initdb = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(base_dir / "data"), "-U", PG_SUPERUSER,
         "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
        capture_output=True,
        text=True,
        check=False,
        cwd=base_dir,
        user=who.user,
        group=who.group,
        extra_groups=who.extra_groups,
    )  # fmt: skip
    if initdb.returncode != 0:
        raise ServerError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
    with (base_dir / "data" / "pg_hba.conf").open("a") as hba:
        hba.writelines(f"host all all {network} trust\n" for network in trusted_networks)
    attempts = 1 if port is not None else START_ATTEMPTS
    for attempt in range(attempts):
        server = PostgresServer(
            host,
            port if port is not None else free_port(host),
            PG_SUPERUSER,
            database,
            base_dir,
            bin_dir,
            run_as,
        )
        try:
            server.start()
        except ServerError:
            if attempt + 1 == attempts:
                raise
            continue
        created = server.run_tool("createdb", database)
        if created.returncode != 0:
            server.stop()
            raise ServerError(f"createdb {database} failed: {created.stderr}")
        return server
    raise AssertionError("unreachable")


PGLITE_DIR = ROOT / "tools" / "pglite"


@dataclass(frozen=True)
class PgliteServer:
    """PGlite (PostgreSQL 17 in WASM) with TimescaleDB, in memory, served over the wire
    protocol by pglite-socket (tools/pglite/server.js).

    It is a single backend: one client at a time (later ones queue), and session state such
    as named prepared statements outlives a client, so each new client starts with
    `DEALLOCATE ALL`. Its listening port is picked by the OS and read from the script's stdout,
    so there is no race for a free port.
    """

    host: str
    port: int
    child: Child = field(repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.child.log_file

    def stop(self, timeout: float = 10.0) -> None:
        """Close its stdin (the script then stops), then SIGTERM, then SIGKILL."""
        process = self.child.process
        assert process is not None
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            end_process(process, [signal.SIGTERM], timeout)
        if process.stdout is not None:
            process.stdout.close()


def start_pglite(log_dir: Path, timeout: float = 60.0) -> PgliteServer:
    """Start tools/pglite/server.js with node (`make pglite` installs its packages)."""
    node = shutil.which("node")
    if node is None:
        raise ServerError("node is not on PATH")
    if not (PGLITE_DIR / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
        raise ServerError(f"no packages in {PGLITE_DIR}/node_modules (make pglite installs them)")
    # Its port comes as the first line of its stdout; it stops when its stdin closes.
    child = Child([node, str(PGLITE_DIR / "server.js")], log_dir / "pglite.log", cwd=PGLITE_DIR,
                  pipes=True)  # fmt: skip
    process = child.start()
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline().decode() if ready else ""
    if not line.startswith("PORT "):
        child.stop([signal.SIGTERM], 10.0)
        raise ServerError(f"pglite did not start: {line!r}\n{log_tail(child.log_file)}")
    return PgliteServer(HOST, int(line.split()[1]), child)
