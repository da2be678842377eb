"""A Market's queue and storage: what exists outside Kubernetes for it.

Redis (docs/engine.md, "The engine service"): the input and events streams, the `dbproc` consumer
group on the events stream, and the registry entry in `xch:markets`, written last so that
the api routes to a market only once its queue exists. Storage: the storage package's own
provisioning (`storage.klines`), never re-implemented here. Every function is idempotent,
so a reconcile interrupted anywhere can simply run again. The local launcher provisions
markets with these same functions.
"""

import redis.asyncio
import redis.exceptions

from ledger.gateway import Gateway
from storage.klines import drop_market_storage, provision_market_storage, retire_market_storage
from xch import keys
from xch.market import Market, OnDelete
from xch.schemas import Close, SetTrading
from xch.wire import FIELD_LOCKED, as_text

OPERATOR_USER = "operator"
"""The user operator commands are enqueued as; they lock nothing."""


class Refused(ValueError):
    """The Market can never be provisioned as it stands (the operator's PermanentError)."""

    reason = "Refused"


class ScaleConflict(Refused):
    """The Market gives an asset a scale other markets in the registry already disagree with:
    one asset has one scale across all markets (docs/architecture.md)."""

    reason = "ScaleConflict"


class NameTaken(Refused):
    """Another Market (in another namespace) already holds this market name: Redis keys and
    the registry are per name, cluster-wide."""

    reason = "NameTaken"


def market_owner(name: str) -> str:
    """Which Market resource ("namespace/uid") holds market `name`'s Redis keys. Only the
    operator reads or writes it."""
    return f"{keys.PREFIX}{name}:owner"


async def claim(client: redis.asyncio.Redis, name: str, owner: str) -> None:
    """Hold market `name` for `owner`; NameTaken if another Market holds it."""
    if await client.set(market_owner(name), owner, nx=True):
        return
    holder = await client.get(market_owner(name))
    if holder is not None and as_text(holder) != owner:
        raise NameTaken(f"market name {name} is held by the Market {as_text(holder)}")


async def owns(client: redis.asyncio.Redis, name: str, owner: str) -> bool:
    holder = await client.get(market_owner(name))
    return holder is not None and as_text(holder) == owner


def market_keys(name: str) -> list[str]:
    """Every Redis key that holds the state or history of market `name`."""
    return [
        keys.market_input(name),
        keys.market_events(name),
        keys.market_applied(name),
        keys.market_lease(name),
        keys.market_lease_holder(name),
        keys.market_trading(name),
        keys.market_snapshot(name),
        keys.market_depth(name),
        keys.market_fence(name),
        keys.market_batches(name),
    ]


def scale_conflicts(market: Market, registry: dict[str, str]) -> list[str]:
    """Why `market` disagrees with the other markets of `registry` about asset scales."""
    mine = {market.spec.base.asset: market.spec.base.scale}
    mine[market.spec.quote.asset] = market.spec.quote.scale
    problems = []
    for name, entry in sorted(registry.items()):
        if name == market.name:
            continue
        other = Market.from_registry_entry(entry).spec
        for asset in (other.base, other.quote):
            if asset.asset in mine and mine[asset.asset] != asset.scale:
                problems.append(
                    f"{asset.asset} has scale {asset.scale} in market {name}, "
                    f"not {mine[asset.asset]}"
                )
    return problems


async def _ensure_stream(client: redis.asyncio.Redis, key: str) -> None:
    """Create an empty stream: an entry added and trimmed away in the same command."""
    if not await client.exists(key):
        await client.xadd(key, {"created": "1"}, maxlen=0, approximate=False)


async def _ensure_group(client: redis.asyncio.Redis, stream: str, group: str) -> None:
    """A consumer group from the stream's start (a new dbproc reads all the history)."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def register(client: redis.asyncio.Redis, market: Market) -> None:
    """Write the registry entry, checking asset scales against every other entry in the same
    transaction (WATCH), so two Markets created together cannot both slip through."""
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.MARKETS)
                raw = await pipe.hgetall(keys.MARKETS)
                registry = {as_text(name): as_text(entry) for name, entry in raw.items()}
                problems = scale_conflicts(market, registry)
                if problems:
                    raise ScaleConflict("; ".join(problems))
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                pipe.hset(keys.MARKETS, market.name, market.registry_entry())
                await pipe.execute()
                return
            except redis.exceptions.WatchError:
                continue


async def provision_queue(client: redis.asyncio.Redis, market: Market, owner: str) -> None:
    """Streams, the dbproc group, then the registry entry. NameTaken or ScaleConflict (both
    checked first: nothing is made) if the name is another Market's or the Market disagrees
    with the registry about an asset's scale."""
    await claim(client, market.name, owner)
    raw = await client.hgetall(keys.MARKETS)
    problems = scale_conflicts(market, {as_text(k): as_text(v) for k, v in raw.items()})
    if problems:
        raise ScaleConflict("; ".join(problems))
    await _ensure_stream(client, keys.market_input(market.name))
    await _ensure_group(client, keys.market_events(market.name), keys.DBPROC_GROUP)
    await register(client, market)


async def queue_exists(client: redis.asyncio.Redis, market: Market, owner: str) -> bool:
    """True if `owner` holds the name and the streams, the group and an up-to-date registry
    entry are all there."""
    if not await owns(client, market.name, owner):
        return False
    entry = await client.hget(keys.MARKETS, market.name)
    if entry is None or as_text(entry) != market.registry_entry():
        return False
    if not await client.exists(keys.market_input(market.name)):
        return False
    try:
        groups = await client.xinfo_groups(keys.market_events(market.name))
    except redis.exceptions.ResponseError:
        return False
    return any(as_text(group["name"]) == keys.DBPROC_GROUP for group in groups)


async def provision_storage(dsn: str, market: Market) -> None:
    await provision_market_storage(dsn, market)


async def release_storage(dsn: str, name: str, on_delete: OnDelete) -> None:
    """Keep the history (marked retired) or drop it, as retention.onDelete says."""
    if on_delete is OnDelete.DELETE:
        await drop_market_storage(dsn, name)
    else:
        await retire_market_storage(dsn, name)


async def set_trading(client: redis.asyncio.Redis, name: str, trading: str) -> str:
    """Enqueue a halt or resume for the running engine; returns the input entry id."""
    entry = await Gateway(client).submit(name, SetTrading(trading=trading), OPERATOR_USER)
    assert entry is not None, "a command that locks nothing is always enqueued"
    return entry


async def close(client: redis.asyncio.Redis, name: str) -> str:
    """Enqueue the settle-and-close: the engine cancels every order, unlocking its funds."""
    entry = await Gateway(client).submit(name, Close(), OPERATOR_USER)
    assert entry is not None, "a command that locks nothing is always enqueued"
    return entry


def _stream_id(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)


async def applied_through(client: redis.asyncio.Redis, name: str, entry_id: str) -> bool:
    """True once the engine has applied and committed input entry `entry_id`."""
    applied = await client.get(keys.market_applied(name))
    return applied is not None and _stream_id(as_text(applied)) >= _stream_id(entry_id)


async def nothing_locked(client: redis.asyncio.Redis, name: str) -> bool:
    """True if no funds can be locked in the market: no engine ever committed (so nothing
    rests in a book) and no pending input holds a lock. Such a market needs no engine to
    close it, e.g. one deleted before its engine ever started."""
    if await client.exists(keys.market_applied(name)):
        return False
    entries = await client.xrange(keys.market_input(name)) or []
    return all(int((fields or {}).get(FIELD_LOCKED) or 0) == 0 for _, fields in entries)


async def unregister(client: redis.asyncio.Redis, name: str) -> None:
    """Remove the registry entry and give the name up (a later Market may take it, and
    with it any history that was retained)."""
    await client.hdel(keys.MARKETS, name)
    await client.delete(market_owner(name))


async def drop_queue(client: redis.asyncio.Redis, name: str) -> None:
    """Delete the market's streams and engine state (retention.onDelete: Delete)."""
    await client.delete(*market_keys(name))
