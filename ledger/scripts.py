"""The ledger's Redis side: the Lua scripts, loaded once and shared by the api, the engine
and the operator.

Each script is one atomic step on the Redis primary. `ledger.reference.Ledger` is their Python
statement; tests hold the two equal.
"""

from importlib import resources
from typing import Any, Protocol


def _lua(name: str) -> str:
    return resources.files("ledger").joinpath("lua").joinpath(f"{name}.lua").read_text()


def script_source(name: str) -> str:
    """A script's Lua, after the shared prelude (helpers every script may use)."""
    return with_prelude(_lua(name))


def with_prelude(lua: str) -> str:
    """Lua of a script kept elsewhere, after the shared prelude."""
    return _lua("prelude") + lua


class ScriptHost(Protocol):
    """A client scripts are registered on: redis-py's, or `runtime.redis_pipe`'s. A script
    is called as `await script(keys=[...], args=[...])`."""

    def register_script(self, script: str) -> Any: ...


class Scripts:
    """The project's Lua scripts registered on one client (EVALSHA, reloaded if flushed)."""

    def __init__(self, client: ScriptHost) -> None:
        self.funds = client.register_script(script_source("funds"))
        self.enqueue = client.register_script(script_source("enqueue"))
        self.commit = client.register_script(script_source("commit"))
        self.lease = client.register_script(script_source("lease"))
        self.snapshot = client.register_script(script_source("snapshot"))
        self.trim_events = client.register_script(script_source("trim_events"))
        self.number = client.register_script(script_source("number"))
