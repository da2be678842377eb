"""Redis and PostgreSQL for the local stack, as plain processes, data under the state
directory (`.state/`, or EXCHANGE_STATE_DIR).

Redis listens on 127.0.0.1:6379 (EXCHANGE_REDIS_PORT) with AOF on, appendfsync everysec
(EXCHANGE_REDIS_APPENDFSYNC=always for fsync on every write), and the platform's ACL users
(the default user off; the caller renders the file, launcher/redis_acl.py). PostgreSQL 15 listens on
127.0.0.1:5432 (EXCHANGE_PG_PORT), database `exchange`, superuser `exchange`, trust
authentication on loopback. When run as root both servers run as the system user `exchange`,
created if missing, which owns their directories. `exchange up` / `exchange down`
(launcher/cli.py) use this module; only the standard library is used.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("EXCHANGE_STATE_DIR", ROOT / ".state")).resolve()
HOST = "127.0.0.1"
SERVICE_USER = "exchange"
PG_SUPERUSER = "exchange"
PG_DATABASE = "exchange"
SERVERS = ("redis", "postgres")


class StackError(RuntimeError):
    """Something the user must fix before the stack can run."""


@dataclass(frozen=True)
class RedisUsers:
    """The ACL file Redis loads, and the password of `health`, the user its readiness check
    pings as."""

    acl: str
    health_password: str = field(repr=False)


@dataclass(frozen=True)
class Layout:
    """Where everything lives, and whom the servers run as (None: as the caller)."""

    redis_port: int
    pg_port: int
    pg_bin: Path
    run_as: str | None
    appendfsync: str = "everysec"

    @property
    def redis_dir(self) -> Path:
        return STATE / "redis"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_acl_file(self) -> Path:
        return self.redis_dir / "users.acl"

    @property
    def pg_data(self) -> Path:
        return STATE / "pg"

    @property
    def pg_socket_dir(self) -> Path:
        return STATE / "run"

    @property
    def log_dir(self) -> Path:
        return STATE / "log"

    @property
    def redis_log(self) -> Path:
        return self.log_dir / "redis.log"

    @property
    def pg_log(self) -> Path:
        return self.log_dir / "postgres.log"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def pg_url(self) -> str:
        return f"postgresql://{PG_SUPERUSER}@{HOST}:{self.pg_port}/{PG_DATABASE}"


def _port_from_env(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise StackError(f"{name}={value!r} is not a port number") from None


def make_layout() -> Layout:
    return Layout(
        redis_port=_port_from_env("EXCHANGE_REDIS_PORT", 6379),
        pg_port=_port_from_env("EXCHANGE_PG_PORT", 5432),
        pg_bin=Path(os.environ.get("EXCHANGE_PG_BIN", "/usr/lib/postgresql/15/bin")),
        run_as=SERVICE_USER if os.geteuid() == 0 else None,
        appendfsync=_appendfsync_from_env(),
    )


def _appendfsync_from_env() -> str:
    """EXCHANGE_REDIS_APPENDFSYNC: everysec (default; up to a second of acknowledged writes
    can be lost if the machine crashes) or always (fsync before every reply; slower)."""
    value = os.environ.get("EXCHANGE_REDIS_APPENDFSYNC", "everysec")
    if value not in ("everysec", "always"):
        raise StackError(f"EXCHANGE_REDIS_APPENDFSYNC={value!r}: use everysec or always")
    return value


def _say(message: str) -> None:
    print(f"localstack: {message}", flush=True)


def _rel(path: Path) -> str:
    return os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)


def _run(
    command: list[str], run_as: str | None, *, check: bool = True, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a command (as `run_as` when given), in its own session so servers outlive us."""
    user = group = None
    extra_groups: tuple[int, ...] | None = None
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        user, group, extra_groups = entry.pw_uid, entry.pw_gid, ()
    result = subprocess.run(
        command,
        cwd=STATE,
        stdin=subprocess.DEVNULL,
        capture_output=quiet,
        text=True,
        check=False,
        start_new_session=True,
        user=user,
        group=group,
        extra_groups=extra_groups,
    )
    if check and result.returncode != 0:
        detail = f"\n{result.stdout}{result.stderr}" if quiet else ""
        raise StackError(f"{' '.join(command)} exited with {result.returncode}{detail}")
    return result


def _ensure_user(layout: Layout) -> None:
    if layout.run_as is None:
        return
    try:
        pwd.getpwnam(layout.run_as)
    except KeyError:
        _say(f"creating system user {layout.run_as}")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", layout.run_as],
            check=True,
        )  # fmt: skip


def _own_dir(path: Path, layout: Layout, mode: int = 0o755) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if layout.run_as is not None:
        entry = pwd.getpwnam(layout.run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


def _check_reachable(layout: Layout) -> None:
    """The service user must be able to reach .state/ through every parent directory."""
    if layout.run_as is None:
        return
    probe = _run(["test", "-w", str(STATE / "log")], layout.run_as, check=False, quiet=True)
    if probe.returncode != 0:
        raise StackError(
            f"user {layout.run_as} cannot write {_rel(STATE / 'log')}: a parent directory of "
            f"{ROOT} is not searchable by others (chmod o+x it, or run as a non-root user)"
        )


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Redis ------------------------------------------------------------------------------------


def redis_pid(layout: Layout) -> int | None:
    """The pid of our Redis if its pidfile names a live redis-server process."""
    try:
        pid = int(layout.redis_pidfile.read_text().strip())
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if name.startswith("redis-server") and _pid_alive(pid) else None


def redis_ping(port: int, health_password: str, host: str = HOST) -> bool:
    """True once Redis lets the health user in and answers PING (not while loading)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(f"AUTH health {health_password}\r\nPING\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = sock.recv(64)
                if not chunk:
                    return False
                answer += chunk
            return answer == b"+OK\r\n+PONG\r\n"
    except OSError:
        return False


def _write_acl(layout: Layout, users: RedisUsers) -> None:
    """The ACL file, readable by Redis only (it holds the passwords' hashes)."""
    path = layout.redis_acl_file
    path.write_text(users.acl)
    path.chmod(0o600)
    if layout.run_as is not None:
        entry = pwd.getpwnam(layout.run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def redis_up(layout: Layout, users: RedisUsers) -> None:
    pid = redis_pid(layout)
    if pid is not None:
        _say(f"Redis already running (pid {pid}) on {HOST}:{layout.redis_port}")
        return
    if _port_open(layout.redis_port):
        raise StackError(
            f"port {layout.redis_port} is taken by another process; "
            "stop it or set EXCHANGE_REDIS_PORT"
        )
    executable = shutil.which("redis-server")
    if executable is None:
        raise StackError("redis-server is not installed (make deps-system installs it)")
    _own_dir(layout.redis_dir, layout, 0o750)
    _write_acl(layout, users)
    _run(
        [
            executable,
            "--daemonize", "yes",
            "--bind", HOST,
            "--port", str(layout.redis_port),
            "--protected-mode", "yes",
            "--dir", str(layout.redis_dir),
            "--pidfile", str(layout.redis_pidfile),
            "--logfile", str(layout.redis_log),
            "--appendonly", "yes",
            "--appendfsync", layout.appendfsync,
            "--save", "",
            "--aclfile", str(layout.redis_acl_file),
        ],
        layout.run_as,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not redis_ping(layout.redis_port, users.health_password):
        if time.monotonic() > deadline:
            raise StackError(f"Redis did not answer PING; see {_rel(layout.redis_log)}")
        time.sleep(0.1)
    _say(f"Redis started (pid {redis_pid(layout)}) on {HOST}:{layout.redis_port}")


def redis_down(layout: Layout) -> None:
    pid = redis_pid(layout)
    if pid is None:
        layout.redis_pidfile.unlink(missing_ok=True)
        _say("Redis is not running")
        return
    os.kill(pid, signal.SIGTERM)  # Redis fsyncs its AOF and exits
    deadline = time.monotonic() + 60
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            raise StackError(f"Redis (pid {pid}) did not stop within 60 s")
        time.sleep(0.1)
    layout.redis_pidfile.unlink(missing_ok=True)
    _say(f"Redis stopped (pid {pid})")


# PostgreSQL -------------------------------------------------------------------------------


def _pg(layout: Layout, tool: str) -> str:
    path = layout.pg_bin / tool
    if not path.exists():
        raise StackError(f"{path} not found (make deps-system installs PostgreSQL 15)")
    return str(path)


def pg_running(layout: Layout) -> bool:
    if not (layout.pg_data / "PG_VERSION").exists():
        return False
    status = _run(
        [_pg(layout, "pg_ctl"), "status", "-D", str(layout.pg_data)],
        layout.run_as,
        check=False,
        quiet=True,
    )
    return status.returncode == 0


def _psql(layout: Layout, database: str, sql: str) -> str:
    result = _run(
        [_pg(layout, "psql"), "-h", HOST, "-p", str(layout.pg_port), "-U", PG_SUPERUSER,
         "-d", database, "-X", "-q", "-t", "-A", "-c", sql],
        None,
        quiet=True,
    )  # fmt: skip
    return result.stdout.strip()


def pg_up(layout: Layout) -> None:
    if pg_running(layout):
        _say(f"PostgreSQL already running on {HOST}:{layout.pg_port}")
        return
    if _port_open(layout.pg_port):
        raise StackError(
            f"port {layout.pg_port} is taken by another process; stop it or set EXCHANGE_PG_PORT"
        )
    if not (layout.pg_data / "PG_VERSION").exists():
        _say(f"initdb into {_rel(layout.pg_data)}")
        _own_dir(layout.pg_data, layout, 0o700)
        _run(
            [_pg(layout, "initdb"), "-D", str(layout.pg_data), "-U", PG_SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--locale=C"],
            layout.run_as,
            quiet=True,
        )  # fmt: skip
    _own_dir(layout.pg_socket_dir, layout)
    options = (
        f"-c listen_addresses={HOST} -p {layout.pg_port} "
        f"-c unix_socket_directories={layout.pg_socket_dir}"
    )
    _run(
        [_pg(layout, "pg_ctl"), "start", "-D", str(layout.pg_data), "-l", str(layout.pg_log),
         "-w", "-t", "60", "-o", options],
        layout.run_as,
        quiet=True,
    )  # fmt: skip
    exists = _psql(layout, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'")
    if exists != "1":
        _psql(layout, "postgres", f"CREATE DATABASE {PG_DATABASE}")
        _say(f"created database {PG_DATABASE}")
    _say(f"PostgreSQL started on {HOST}:{layout.pg_port}")


def pg_down(layout: Layout) -> None:
    if not pg_running(layout):
        _say("PostgreSQL is not running")
        return
    _run(
        [_pg(layout, "pg_ctl"), "stop", "-D", str(layout.pg_data), "-m", "fast", "-w", "-t", "60"],
        layout.run_as,
        quiet=True,
    )
    _say("PostgreSQL stopped")


# Commands ---------------------------------------------------------------------------------


def _prepare(layout: Layout) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    _ensure_user(layout)
    _own_dir(layout.log_dir, layout)
    _check_reachable(layout)


def up(layout: Layout, redis_users: RedisUsers, servers: Sequence[str] = SERVERS) -> list[str]:
    """Start the servers that are not running; lines describing them for the summary."""
    _prepare(layout)
    lines = []
    if "redis" in servers:
        redis_up(layout, redis_users)
        lines += [
            f"redis       {layout.redis_url}   AOF on, appendfsync {layout.appendfsync}, "
            "a user per component",
            f"            data {_rel(layout.redis_dir)}/   log {_rel(layout.redis_log)}",
        ]
    if "postgres" in servers:
        pg_up(layout)
        lines += [
            f"postgres    {layout.pg_url}",
            f"            data {_rel(layout.pg_data)}/   log {_rel(layout.pg_log)}",
        ]
    return lines


def down(layout: Layout, servers: Sequence[str] = SERVERS) -> None:
    if not STATE.exists():
        _say("nothing to stop (the state directory does not exist)")
        return
    if "redis" in servers:
        redis_down(layout)
    if "postgres" in servers:
        pg_down(layout)


def status_lines(layout: Layout) -> list[str]:
    pid = redis_pid(layout)
    redis_state = f"running (pid {pid}) on {HOST}:{layout.redis_port}" if pid else "stopped"
    pg_state = f"running on {HOST}:{layout.pg_port}" if pg_running(layout) else "stopped"
    return [f"redis       {redis_state}", f"postgres    {pg_state}"]
