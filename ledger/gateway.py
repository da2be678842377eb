"""How funds and commands enter the exchange: the api's side of the Redis ledger.

`deposit` / `withdraw` move free funds; `submit` checks and locks what a command needs and
appends it to its market's input stream, atomically, so every command an engine reads is
funded and a user's balance is shared safely by every market. The api's client order ids are
claimed in the same step (`Claim`): a command is enqueued if and only if its id was free.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio

from ledger.scripts import ScriptHost, Scripts
from xch import keys
from xch.money import MAX_UNITS
from xch.schemas import Command
from xch.wire import as_text, encode_command

AMOUNT_TOO_LARGE = "amount_too_large"


@dataclass(frozen=True, slots=True)
class Balance:
    free: int
    locked: int


@dataclass(frozen=True, slots=True)
class ReferenceClaim:
    """Makes a deposit or withdrawal idempotent: the first movement under `key`
    (`xch.keys.funds_claim`) records its request and reply for `ttl_seconds`; the same request
    again gets that reply and moves nothing, any other FundsError('reference_reused')."""

    key: str
    ttl_seconds: int


class FundsError(ValueError):
    """A refused deposit or withdrawal (`reason` is a result code's reason string)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claim:
    """A key `submit` sets to `value` (expiring after `ttl_seconds`) in the same atomic step
    as the lock and the enqueue, unless it is set already: then nothing is done."""

    key: str
    value: bytes
    ttl_seconds: int


class ClaimTaken(Exception):
    """`submit`'s claim was set already (`value`): nothing was locked or enqueued."""

    def __init__(self, value: bytes) -> None:
        super().__init__("claimed already")
        self.value = value


def balances_of(fields: Iterable[tuple[bytes | str, bytes | str]]) -> dict[str, Balance]:
    """A user's balances hash (`{asset}:free`, `{asset}:locked`, as HGETALL reads it) by
    asset, in order of the asset's name."""
    values = {as_text(name): int(value) for name, value in fields}
    assets = {name.rsplit(":", 1)[0] for name in values}
    return {
        asset: Balance(values.get(f"{asset}:free", 0), values.get(f"{asset}:locked", 0))
        for asset in sorted(assets)
    }


class Gateway:
    """The funds and enqueue scripts on one client (`scripts_on`, if given: the api's
    pipelined connection), reads on `client`. Neither may retry commands by itself
    (`Redis.from_url` clients and `runtime.redis_pipe` do not): a retried `enqueue` whose first
    reply was lost would enqueue and lock twice. A ConnectionError from `submit` means:
    outcome unknown."""

    def __init__(
        self, client: redis.asyncio.Redis, reply_to: str = "", scripts_on: ScriptHost | None = None
    ) -> None:
        self.client = client
        self.reply_to = reply_to
        self.scripts = Scripts(scripts_on or client)

    async def deposit(
        self,
        user: str,
        asset: str,
        amount: int,
        reference: str = "",
        claim: ReferenceClaim | None = None,
    ) -> int:
        """Add `amount` minor units to `user`'s free `asset`; returns the new free balance.
        `reference` (say, the payment it records) is journaled with the movement."""
        if amount <= 0:
            raise FundsError("invalid_amount")
        if amount > MAX_UNITS:
            raise FundsError(AMOUNT_TOO_LARGE)
        return await self._move(user, asset, amount, reference, claim)

    async def withdraw(
        self,
        user: str,
        asset: str,
        amount: int,
        reference: str = "",
        claim: ReferenceClaim | None = None,
    ) -> int:
        """Take `amount` from free funds; FundsError('insufficient_funds') if not covered."""
        if amount <= 0:
            raise FundsError("invalid_amount")
        return await self._move(user, asset, -amount, reference, claim)

    async def _move(
        self, user: str, asset: str, amount: int, reference: str, claim: ReferenceClaim | None
    ) -> int:
        names = [keys.balances(user), keys.SUPPLY, keys.FUNDS, keys.FUNDS_SEQ]
        args = [asset, str(amount), user, reference, str(time.time_ns() // 1_000_000)]
        if claim is not None:
            names.append(claim.key)
            args += [f"{user}|{asset}|{amount}", str(claim.ttl_seconds)]
        done, value = await self.scripts.funds(keys=names, args=args)
        if not done:
            raise FundsError(as_text(value))
        return int(value)

    async def submit(
        self,
        market: str,
        command: Command,
        user: str,
        asset: str = "",
        amount: int = 0,
        claim: Claim | None = None,
    ) -> str | None:
        """Lock `amount` of `asset` for `user` and enqueue `command` for `market`, and set
        `claim` along with them.

        Returns the input stream entry id, or None (nothing changed) if free funds do not
        cover the lock. FundsError('amount_too_large') if the lock, or the locked balance it
        makes, does not fit a 64-bit balance, ClaimTaken if the claim is set already
        (nothing changed either)."""
        if amount < 0:
            raise ValueError("a lock cannot be negative")
        if amount > MAX_UNITS:
            raise FundsError(AMOUNT_TOO_LARGE)
        script_keys = [keys.balances(user), keys.market_input(market)]
        args: list[str | bytes | int] = [
            encode_command(command),
            user,
            asset if amount else "",
            str(amount),
            self.reply_to,
        ]
        if claim is not None:
            script_keys.append(claim.key)
            args += [claim.value, claim.ttl_seconds]
        done, value = await self.scripts.enqueue(keys=script_keys, args=args)
        if done == 1:
            return as_text(value)
        if done == 2:
            raise ClaimTaken(value)
        if as_text(value) == "overflow":
            raise FundsError(AMOUNT_TOO_LARGE)
        return None

    async def balances(self, user: str) -> dict[str, Balance]:
        raw = await self.client.hgetall(keys.balances(user))
        return balances_of(raw.items())

    async def supply(self) -> dict[str, int]:
        raw = await self.client.hgetall(keys.SUPPLY)
        return {as_text(asset): int(value) for asset, value in raw.items()}
