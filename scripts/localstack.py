"""The local stack: Redis and PostgreSQL as plain processes, with their data under .state/.

    python3 scripts/localstack.py up [redis|postgres|engines ...]     # start what is not running
    python3 scripts/localstack.py down [redis|postgres|engines ...]   # stop what is running
    python3 scripts/localstack.py status

With nothing named, up and down act on all. Both are idempotent. `engines` runs one
`python -m engine` per examples/markets/NAME.yaml (from .venv; health on 127.0.0.1:8081 and
up, in file order), with its log in .state/log/engine-NAME.log.

Redis listens on 127.0.0.1:6379 (EXCHANGE_REDIS_PORT) with AOF on, appendfsync everysec.
PostgreSQL 15 listens on 127.0.0.1:5432 (EXCHANGE_PG_PORT), database `exchange`, superuser
`exchange`, trust authentication on loopback. When run as root both servers run as the
system user `exchange`, created if missing, which owns their directories under .state/.
Only the standard library is used, so this runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".state"
HOST = "127.0.0.1"
SERVICE_USER = "exchange"
PG_SUPERUSER = "exchange"
PG_DATABASE = "exchange"
SERVERS = ("redis", "postgres", "engines")
NOT_BUILT = "api, ws, dbproc, mm, operator, frontend"
MARKETS = ROOT / "examples" / "markets"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
ENGINE_HEALTH_PORT = 8081


class StackError(RuntimeError):
    """Something the user must fix before the stack can run."""


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
    return str(path.relative_to(ROOT))


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


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_up(layout: Layout) -> None:
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
        ],
        layout.run_as,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not redis_ping(layout.redis_port):
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


# Engines: one `python -m engine` per examples/markets/NAME.yaml -----------------------------


def _engine_markets() -> list[Path]:
    return sorted(MARKETS.glob("*.yaml"))


def _engine_pidfile(layout: Layout, manifest: Path) -> Path:
    return STATE / "run" / f"engine-{manifest.stem}.pid"


def _engine_pid(layout: Layout, manifest: Path) -> int | None:
    pidfile = _engine_pidfile(layout, manifest)
    try:
        pid = int(pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def engines_up(layout: Layout) -> list[str]:
    """Start the engine of every example market that is not running; lines for the summary."""
    if not VENV_PYTHON.exists():
        raise StackError(f"{_rel(VENV_PYTHON)} is missing: run `make venv` (make up does)")
    (STATE / "run").mkdir(exist_ok=True)
    lines = []
    for n, manifest in enumerate(_engine_markets()):
        market = manifest.stem
        log = layout.log_dir / f"engine-{market}.log"
        port = ENGINE_HEALTH_PORT + n
        if _engine_pid(layout, manifest) is None:
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [str(VENV_PYTHON), "-m", "engine", "--market", market, "--manifest",
                     str(manifest), "--redis-url", layout.redis_url, "--health-port", str(port)],
                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            _engine_pidfile(layout, manifest).write_text(str(process.pid))
        lines.append(
            f"  engine      {market}: health http://{HOST}:{port}/readyz   log {_rel(log)}"
        )
    return lines


def engines_down(layout: Layout) -> None:
    for manifest in _engine_markets():
        pid = _engine_pid(layout, manifest)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        _engine_pidfile(layout, manifest).unlink(missing_ok=True)
        _say(f"stopped the engine of {manifest.stem}")


# Commands ---------------------------------------------------------------------------------


def _prepare(layout: Layout) -> None:
    STATE.mkdir(exist_ok=True)
    _ensure_user(layout)
    _own_dir(layout.log_dir, layout)
    _check_reachable(layout)


def up(layout: Layout, servers: list[str]) -> None:
    _prepare(layout)
    lines = []
    if "redis" in servers:
        redis_up(layout)
        lines += [
            f"  Redis       {layout.redis_url}   AOF on, appendfsync {layout.appendfsync}",
            f"              data {_rel(layout.redis_dir)}/   log {_rel(layout.redis_log)}",
        ]
    if "postgres" in servers:
        pg_up(layout)
        lines += [
            f"  PostgreSQL  {layout.pg_url}",
            f"              data {_rel(layout.pg_data)}/   log {_rel(layout.pg_log)}",
        ]
    if "engines" in servers:
        lines += engines_up(layout)
    who = f"servers as user {layout.run_as}" if layout.run_as else "as the current user"
    body = "\n".join(lines)
    print(
        f"""
Local stack is up ({who}):
{body}
The other components ({NOT_BUILT}) are not built yet.
Data in .state/ survives `make down`.""",
        flush=True,
    )


def down(layout: Layout, servers: list[str]) -> None:
    if not STATE.exists():
        _say("nothing to stop (.state/ does not exist)")
        return
    if "engines" in servers:
        engines_down(layout)
    if "redis" in servers:
        redis_down(layout)
    if "postgres" in servers:
        pg_down(layout)


def status(layout: Layout) -> None:
    pid = redis_pid(layout)
    redis_state = f"running (pid {pid}) on {HOST}:{layout.redis_port}" if pid else "stopped"
    pg_state = f"running on {HOST}:{layout.pg_port}" if pg_running(layout) else "stopped"
    print(f"Redis:      {redis_state}\nPostgreSQL: {pg_state}", flush=True)
    for manifest in _engine_markets():
        engine_pid = _engine_pid(layout, manifest)
        state = f"running (pid {engine_pid})" if engine_pid else "stopped"
        print(f"Engine {manifest.stem}: {state}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "servers",
        nargs="*",
        metavar="redis|postgres|engines",
        help="up/down only these (default: all)",
    )
    args = parser.parse_args(argv)
    servers: list[str] = args.servers or list(SERVERS)
    unknown = sorted(set(servers) - set(SERVERS))
    if unknown:
        parser.error(f"unknown server {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    layout = make_layout()
    try:
        if args.command == "up":
            up(layout, servers)
        elif args.command == "down":
            down(layout, servers)
        else:
            status(layout)
    except StackError as error:
        print(f"localstack: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
