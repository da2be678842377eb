"""The market maker as a process (`python -m mm`) for one market."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.processes import ServiceProcess, free_port
from tests.harness.servers import as_user


@dataclass
class MakerProcess(ServiceProcess):
    """`python -m mm --market … --manifest …` with only PATH and `env` for environment, so
    that none of the developer's EXCHANGE_MM_* settings reach it."""

    market: str
    manifest: Path
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = field(default_factory=free_port)

    def arguments(self) -> list[str]:
        return ["mm", "--market", self.market, "--manifest", str(self.manifest)]

    def environment(self) -> dict[str, str]:
        environment = {"PATH": "/usr/bin:/bin", "EXCHANGE_MM_HEALTH_PORT": str(self.health_port),
                       **self.env}  # fmt: skip
        if "EXCHANGE_MM_REDIS_URL" in environment:
            environment["EXCHANGE_MM_REDIS_URL"] = as_user(
                environment["EXCHANGE_MM_REDIS_URL"], "mm"
            )
        return environment
