"""Where the local stack lives and listens: one place for every port, URL and secret."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from launcher import redis_acl, servers


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _secret(path: Path, length: int = 32) -> str:
    """A secret made once and kept in the state directory, so restarts agree on it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(length))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass(frozen=True)
class LocalConfig:
    layout: servers.Layout
    state: Path
    api_port: int
    ws_port: int
    dbproc_port: int
    engine_base_port: int
    mm_base_port: int
    frontend_port: int

    @classmethod
    def from_env(cls) -> LocalConfig:
        return cls(
            layout=servers.make_layout(),
            state=servers.STATE,
            api_port=_port("EXCHANGE_API_PORT", 8000),
            ws_port=_port("EXCHANGE_WS_PORT", 8090),
            dbproc_port=_port("EXCHANGE_DBPROC_HEALTH_PORT", 8091),
            engine_base_port=_port("EXCHANGE_ENGINE_BASE_PORT", 8101),
            mm_base_port=_port("EXCHANGE_MM_BASE_PORT", 8201),
            frontend_port=_port("EXCHANGE_FRONTEND_PORT", 3000),
        )

    def redis_url(self, user: str) -> str:
        """The Redis URL of one ACL user (charts/exchange/files/redis-acl.yaml): each
        component connects as its own; the launcher itself as the operator."""
        return redis_acl.url(servers.HOST, self.layout.redis_port, user, self.redis_passwords[user])

    @cached_property
    def redis_passwords(self) -> dict[str, str]:
        """Every Redis user's password, made once and kept in the state directory (a user
        added to the rules since gets one on the next start)."""
        path = self.state / "secrets" / "redis-users.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        passwords = redis_acl.new_passwords() | stored
        if passwords != stored:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(json.dumps(passwords))
        return passwords

    def redis_users(self) -> servers.RedisUsers:
        passwords = self.redis_passwords
        return servers.RedisUsers(redis_acl.acl_file(passwords), passwords["health"])

    @property
    def database_url(self) -> str:
        return self.layout.pg_url

    @property
    def api_url(self) -> str:
        return f"http://{servers.HOST}:{self.api_port}"

    @property
    def frontend_url(self) -> str:
        return f"http://{servers.HOST}:{self.frontend_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{servers.HOST}:{self.ws_port}/ws"

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    @property
    def log_dir(self) -> Path:
        return self.layout.log_dir

    @cached_property
    def jwt_secret(self) -> str:
        return _secret(self.state / "secrets" / "jwt-secret")

    @cached_property
    def secrets_key(self) -> str:
        """Seals the API-key secrets in PostgreSQL (api.keyring)."""
        return _secret(self.state / "secrets" / "api-secrets-key")

    @cached_property
    def mm_password(self) -> str:
        return _secret(self.state / "secrets" / "mm-password", 16)
