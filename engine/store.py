"""One market's durable state in Redis, as the engine service reads and commits it."""

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

from ledger.scripts import Scripts
from xch import keys
from xch.wire import (
    FIELD_ASSET,
    FIELD_COMMAND,
    FIELD_EPOCH,
    FIELD_LOCKED,
    FIELD_REPLY,
    FIELD_USER,
    Epoch,
    as_text,
)

NO_INPUT = "0-0"


def this_pod() -> str:
    """Who a lease this process takes names as its holder: its Pod (POD_NAME, which the
    operator sets in the engine's Pod template from the downward API), else the host."""
    return os.environ.get("POD_NAME") or socket.gethostname()


class InputEntry(msgspec.Struct, frozen=True, gc=False):
    """A command as the lock-and-enqueue script wrote it; `ts` is the entry id's milliseconds
    (so time comes from the log, never from the engine's clock)."""

    entry_id: str
    ts: int
    payload: bytes
    user: str
    asset: str
    locked: int
    reply_to: str


class Snapshot(msgspec.Struct, frozen=True):
    input_id: str
    seq: int
    state: bytes


@dataclass(frozen=True, slots=True)
class BatchRecord:
    last_input_id: str
    seq: int

    def encode(self) -> str:
        return f"{self.last_input_id} {self.seq}"

    @classmethod
    def decode(cls, text: str) -> "BatchRecord":
        last_input_id, seq = text.split(" ")
        return cls(last_input_id, int(seq))


def stream_id_key(entry_id: str) -> tuple[int, int]:
    millis, _, counter = entry_id.partition("-")
    return int(millis), int(counter or 0)


def _entries(raw: Any) -> list[InputEntry]:
    """Entries of a raw XRANGE reply, or of the single stream of a raw XREAD reply."""
    return [_entry(entry_id, flat) for entry_id, flat in raw or []]


_LAYOUT = [FIELD_COMMAND, FIELD_USER, FIELD_ASSET, FIELD_LOCKED, FIELD_REPLY]


def _entry(entry_id: bytes, flat: list[bytes]) -> InputEntry:
    text_id = entry_id.decode()
    if flat[::2] == _LAYOUT:  # as the enqueue script writes it: read by position
        return InputEntry(
            text_id,
            int(text_id.partition("-")[0]),
            flat[1],
            flat[3].decode(errors="replace"),
            flat[5].decode(errors="replace"),
            _int(flat[7]),
            flat[9].decode(errors="replace"),
        )
    fields = dict(zip(flat[::2], flat[1::2], strict=False))
    return InputEntry(
        entry_id=text_id,
        ts=int(text_id.partition("-")[0]),
        payload=fields.get(FIELD_COMMAND, b""),
        user=fields.get(FIELD_USER, b"").decode(errors="replace"),
        asset=fields.get(FIELD_ASSET, b"").decode(errors="replace"),
        locked=_int(fields.get(FIELD_LOCKED, b"0")),
        reply_to=fields.get(FIELD_REPLY, b"").decode(errors="replace"),
    )


def new_entries(reply: Any) -> list[InputEntry]:
    """The entries of a raw XREAD reply of one stream (none for a reply that timed out)."""
    if not reply:
        return []
    # RESP3 answers a map of stream -> entries, RESP2 a list of [stream, entries].
    streams = list(reply.values()) if isinstance(reply, dict) else [item[1] for item in reply]
    return _entries(streams[0])


def _int(raw: bytes) -> int:
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


class MarketStore:
    def __init__(self, client: redis.asyncio.Redis, market: str, holder: str | None = None) -> None:
        self.client = client
        self.holder = holder or this_pod()
        """Who this store's lease names as its holder (the Market's status.leaseHolder)."""
        # The same connections without redis-py's reply post-processing, which costs more than
        # matching: stream replies are parsed here, once, into InputEntry.
        self.raw = redis.asyncio.Redis(connection_pool=client.connection_pool)
        for command in ("XREAD", "XRANGE"):
            self.raw.response_callbacks.pop(command, None)
        self._connection: AbstractConnection | None = None
        self.market = market
        self.scripts = Scripts(client)
        self.input = keys.market_input(market)
        self.events = keys.market_events(market)
        self.applied_key = keys.market_applied(market)
        self.lease = keys.market_lease(market)
        self.fence = keys.market_fence(market)
        self.lease_holder = keys.market_lease_holder(market)
        self.trading_key = keys.market_trading(market)
        self.snapshot_key = keys.market_snapshot(market)
        self.depth = keys.market_depth(market)
        self.batches_key = keys.market_batches(market)

    # ---- lease --------------------------------------------------------------------------

    async def acquire_lease(self, ttl_ms: int) -> int:
        """A fencing token if the lease was free, else 0."""
        token = await self.scripts.lease(
            keys=self._lease_keys(), args=["acquire", ttl_ms, 0, self.holder]
        )
        return int(token)

    async def renew_lease(self, token: int, ttl_ms: int, trading: str = "") -> bool:
        """True if still held (ttl reset); `trading`: the holder's committed trading state,
        reported beside the lease ('' while not known: recovery has not finished)."""
        renewed = await self.scripts.lease(
            keys=self._lease_keys(), args=["renew", ttl_ms, token, self.holder, trading]
        )
        return bool(renewed)

    async def release_lease(self, token: int) -> bool:
        released = await self.scripts.lease(keys=self._lease_keys(), args=["release", 0, token])
        return bool(released)

    def _lease_keys(self) -> list[str]:
        return [self.lease, self.fence, self.lease_holder, self.trading_key]

    # ---- input --------------------------------------------------------------------------

    async def read_new(self, after: str, count: int, block_ms: int | None) -> list[InputEntry]:
        """Up to `count` entries after `after`, waiting up to `block_ms` for the first (None:
        not at all)."""
        return new_entries(await self.read_new_reply(after, count, block_ms))

    async def read_new_reply(self, after: str, count: int, block_ms: int | None) -> Any:
        """`read_new`'s raw XREAD reply, for `new_entries` (so that the two can be timed)."""
        block = () if block_ms is None else ("BLOCK", block_ms)
        connection = await self._loop_connection()
        try:
            await connection.send_command(
                "XREAD", "COUNT", count, *block, "STREAMS", self.input, after
            )
            return await connection.read_response()
        except BaseException:
            await self._drop_loop_connection()
            raise

    async def read_range(self, after: str, until: str, count: int) -> list[InputEntry]:
        """Entries after `after` up to and including `until`."""
        reply: Any = await self.raw.execute_command(  # type: ignore[no-untyped-call]
            "XRANGE", self.input, f"({after}", until, "COUNT", count
        )
        return _entries(reply)

    # ---- committed state ----------------------------------------------------------------

    async def applied(self) -> str:
        value = await self.client.get(self.applied_key)
        return as_text(value) if value is not None else NO_INPUT

    async def batches(self) -> list[BatchRecord]:
        return [
            BatchRecord.decode(as_text(raw))
            for raw in await self.client.lrange(self.batches_key, 0, -1)
        ]

    async def new_epoch(self, seq: int, trade_id: int) -> Epoch:
        """A new epoch for an engine whose state, just built from Redis, resumes at `seq` and
        `trade_id`: Redis's clock in µs, and above the epoch of the events stream's last entry
        (the history this state continues), so that a restored Redis never brings back an
        epoch already used (docs/storage.md, "Redis rollback")."""
        last: Any = await self.client.xrevrange(self.events, count=1)
        previous = Epoch.decode(last[0][1].get(FIELD_EPOCH) if last else None).epoch
        seconds, micros = await self.client.time()
        return Epoch(max(seconds * 1_000_000 + micros, previous + 1), previous, seq, trade_id)

    async def load_snapshot(self) -> Snapshot | None:
        raw: Any = await self.client.get(self.snapshot_key)
        return None if raw is None else msgspec.msgpack.decode(raw, type=Snapshot)

    async def commit(
        self,
        token: int,
        previous: str,
        batch: BatchRecord,
        moves: list[tuple[str, str, int]],
        events: bytes,
        depth: bytes,
        replies: Sequence[tuple[str, bytes]] = (),
        epoch: bytes = b"",
    ) -> str:
        """Commit one batch (its events encoded as one stream entry, with the engine's
        `epoch`, `Epoch.encode`) atomically, then publish `replies` (channel, message) from
        the same script; `previous` is the applied input id the batch follows. 'ok', or
        'fenced', 'stale', 'negative:…', 'overflow:…' with nothing written and nothing
        published."""
        args = self.commit_args(token, previous, batch, moves, events, depth, replies, epoch)
        return await self.commit_with(args)

    def commit_args(
        self,
        token: int,
        previous: str,
        batch: BatchRecord,
        moves: list[tuple[str, str, int]],
        events: bytes,
        depth: bytes,
        replies: Sequence[tuple[str, bytes]] = (),
        epoch: bytes = b"",
    ) -> list[str | bytes | int]:
        """The arguments of `commit`'s script, for `commit_with`."""
        flat_moves: list[str] = []
        for user, field, delta in moves:
            flat_moves += (keys.balances(user), field, str(delta))
        args: list[str | bytes | int] = [
            token, previous, batch.last_input_id, batch.encode(), depth, events,
            msgspec.msgpack.encode(flat_moves), epoch,
        ]  # fmt: skip
        for channel, message in replies:
            args += (channel, message)
        return args

    async def commit_with(self, args: list[str | bytes | int]) -> str:
        """Run the commit script with `commit_args`' arguments; what `commit` returns."""
        return as_text(await self.scripts.commit(keys=self._commit_keys(), args=args))

    async def send_commit(
        self, args: list[str | bytes | int], read_after: str | None, count: int
    ) -> "PendingCommit":
        """Send a commit (`commit_args`' arguments) without waiting for its answer, and in the
        same write, unless `read_after` is None, the read of up to `count` entries after
        `read_after` (waiting for none): one round trip for both."""
        commit = self.scripts.commit
        commit_keys = self._commit_keys()
        commands: list[tuple[str | bytes | int, ...]] = [
            ("EVALSHA", commit.sha, len(commit_keys), *commit_keys, *args)
        ]
        if read_after is not None:
            commands.append(("XREAD", "COUNT", count, "STREAMS", self.input, read_after))
        connection = await self._loop_connection()
        try:
            await connection.send_packed_command(connection.pack_commands(commands))
        except BaseException:
            await self._drop_loop_connection()
            raise
        return PendingCommit(self, connection, args, len(commands))

    async def _loop_connection(self) -> AbstractConnection:
        """The engine loop's own connection, for its reads and commits: taken from the pool
        once, not per call (redis-py's client and pool cost more per call than matching a
        small batch)."""
        if self._connection is None:
            self._connection = await self.raw.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        return self._connection

    async def _drop_loop_connection(self) -> None:
        """Close the loop's connection (an answer on it may be unread) and hand it back."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
            await self.raw.connection_pool.release(connection)

    def _commit_keys(self) -> list[str]:
        return [self.lease, self.applied_key, self.events, self.depth, self.batches_key]

    async def save_snapshot(self, token: int, snapshot: Snapshot) -> str:
        """Store `snapshot` and drop the input and batch records it covers; 'ok' or 'fenced'.
        Safe to run twice."""
        result = await self.scripts.snapshot(
            keys=[self.lease, self.snapshot_key, self.input, self.batches_key],
            args=[token, msgspec.msgpack.encode(snapshot), snapshot.input_id],
        )
        return as_text(result)

    async def trim_events(self, maxlen: int) -> tuple[int, int]:
        """Trim the events stream towards `maxlen` entries, never past what the storage
        consumer group has not acknowledged: (entries trimmed, entries not yet acknowledged,
        -1 if unknown)."""
        trimmed, unstored = await self.scripts.trim_events(
            keys=[self.events], args=[keys.DBPROC_GROUP, maxlen]
        )
        return int(trimmed), int(unstored)


class PendingCommit:
    """What `MarketStore.send_commit` sent: `answers` waits for them; `close` drops the
    connection if an answer was left unread."""

    def __init__(
        self,
        store: MarketStore,
        connection: AbstractConnection,
        args: list[str | bytes | int],
        commands: int,
    ) -> None:
        self.store = store
        self.connection = connection
        self.args = args
        self.unread = commands

    async def answers(self) -> tuple[str, Any]:
        """What `MarketStore.commit` returns, and the read's raw XREAD reply (`new_entries`
        parses it; None if no read was sent)."""
        lost_scripts = False
        try:
            result = as_text(await self._answer())
        except NoScriptError:  # Redis lost its scripts (a restart): the commit did not run
            lost_scripts, result = True, ""
        read = await self._answer() if self.unread else None
        if lost_scripts:
            result = await self.store.commit_with(self.args)
        return result, read

    async def _answer(self) -> Any:
        try:
            answer = await self.connection.read_response()
        except ResponseError:  # an error answer, read whole
            self.unread -= 1
            raise
        self.unread -= 1
        return answer

    async def close(self) -> None:
        if self.unread:
            await self.store._drop_loop_connection()
