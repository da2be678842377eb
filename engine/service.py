"""The engine service of one market: durable input, atomic commits, recovery, one writer.

    lease ─► recover (snapshot + replay of committed input) ─► loop:
        XREAD a batch ─► match ─► one commit script (moves, events, applied id, depth,
        then the replies published) ─► maybe snapshot

Under load the loop is a pipeline of two batches: each commit goes out with the read of
what follows, and the batch read before is matched while the commit runs (see
`_commit_and_match_next`); commits still go one at a time, in input order.

Nothing the engine decided is visible before its commit, and a commit only lands while the
engine holds the market's lease (fencing token checked by the script). Any Redis error
throws the in-memory state away: the engine rebuilds it from what was committed, so a crash
or a lost connection at any instant neither loses nor repeats a command.
"""

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
import redis.asyncio
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine import stages
from engine.core import Engine
from engine.metrics import EngineMetrics
from engine.snapshot import dump_engine, load_engine
from engine.store import (
    BatchRecord,
    InputEntry,
    MarketStore,
    Snapshot,
    new_entries,
    stream_id_key,
)
from ledger.reference import Ledger
from ledger.scripts import script_source
from runtime.pause import pause
from xch import keys
from xch.market import MarketRules
from xch.marketdata import DepthValue, encode_depth
from xch.schemas import BUY, SELL, Command, Event, Place, PlaceList, ResultCode
from xch.wire import NO_EPOCH, Reply, decode_command, encode_events, encode_reply

log = logging.getLogger("engine")

REPLAY_CHUNK = 5000
REDIS_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class LeaseLost(RuntimeError):
    """Another engine holds (or may hold) this market's lease."""


class LedgerBroken(RuntimeError):
    """A commit was refused because a balance would go negative: a bug; never continue."""


class CommitUncertain(RuntimeError):
    """What is committed is not what this engine last committed: rebuild from Redis."""


class RecoveryMismatch(RuntimeError):
    """Replaying the committed input did not reproduce the committed sequence numbers."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A matched batch: its commit's arguments, and what the service notes once committed."""

    record: BatchRecord
    last_ts: int
    commands: int
    book_orders: int
    trading: str
    """The market's trading state once the batch is applied."""
    args: list[str | bytes | int]


def decoded(payload: bytes) -> Command | None:
    """An input entry's command; None if it does not decode."""
    try:
        return decode_command(payload)
    except msgspec.DecodeError:
        return None


class EngineService:
    def __init__(
        self,
        rules: MarketRules,
        client: redis.asyncio.Redis,
        *,
        batch_max: int = 2000,
        block_ms: int = 100,
        lease_ttl_ms: int = 3000,
        snapshot_every: int = 10_000,
        snapshot_seconds: float = 60.0,
        events_maxlen: int = 1_000_000,
        events_trim_seconds: float = 1.0,
        depth_levels: int = 500,
        retry_seconds: float = 0.5,
        metrics: EngineMetrics | None = None,
        freeze_heap: bool = False,
    ) -> None:
        self.rules = rules
        self.store = MarketStore(client, rules.name)
        self.batch_max = batch_max
        self.block_ms = block_ms
        self.lease_ttl_ms = lease_ttl_ms
        self.snapshot_every = snapshot_every
        self.snapshot_seconds = snapshot_seconds
        self.events_maxlen = events_maxlen
        self.events_trim_seconds = events_trim_seconds
        self.depth_levels = depth_levels
        self.retry_seconds = retry_seconds
        self.freeze_heap = freeze_heap
        """Keep what lives long out of the collector's full passes (`_freeze_heap`): for a
        process that runs this service alone, since it changes the whole process's collector."""
        self.metrics = metrics or EngineMetrics(rules.name)
        self.engine = Engine(rules)
        self.applied = "0-0"
        self.committed_trading = ""
        """The trading state as of `applied` (its lease renewals report it); '' until the
        first recovery."""
        self._leading = False
        self._lease_until = 0.0
        """Until when (time.monotonic) this process is sure to hold its lease."""
        self.epoch = NO_EPOCH
        self._epoch_field = b""
        self._since_snapshot = 0
        self._snapshot_at = time.monotonic()
        self._snapshot_child: int | None = None
        self._stopping = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Leading, and sure to hold the lease: a leader whose renewal hangs (Redis or the
        network stalled) stops being ready when its lease may have expired, before it knows
        it lost it, so that two engines never both look ready to probes."""
        return self._leading and time.monotonic() < self._lease_until

    def stop(self) -> None:
        """Ask `run` to finish: it stops leading, releases the lease and returns. (A flag, not
        only a cancellation: a cancellation can be lost inside a Redis call's timeout.)"""
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once on `stop`."""
        await pause(self._stopping, seconds)

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Lead the market whenever this process holds its lease; wait as a standby otherwise."""
        token = 0
        try:
            while not self._stopping.is_set():
                try:
                    if not token:
                        token = await self._acquire()
                        if not token:
                            break
                    # Each task also ends when the other did: the task group's cancellation
                    # alone can be lost inside a Redis call (seen with uvloop after a Redis
                    # restart), and then the group would wait forever.
                    over = asyncio.Event()
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(self._until_over(over, self._keep_lease(token, over)))
                        tasks.create_task(self._until_over(over, self._lead(token, over)))
                        tasks.create_task(self._until_over(over, self._trim_events(over)))
                except* LeaseLost:
                    log.warning("lost the lease of %s; standing by", self.rules.name)
                    token = 0
                except* (*REDIS_UNAVAILABLE, CommitUncertain) as errors:
                    log.warning("%s; rebuilding from Redis", errors.exceptions[0])
                    await self._pause(self.retry_seconds)
                finally:
                    self._leading = False
        finally:
            if token:
                await self._release(token)

    async def run_through(self, entry_id: str) -> None:
        """Lead (as `run`) until input `entry_id` is applied and committed, then stop. Raises
        what ended the service if it ended first."""
        task = asyncio.create_task(self.run())
        try:
            while stream_id_key(self.applied) < stream_id_key(entry_id) and not task.done():
                await asyncio.wait({task}, timeout=0.05)
        finally:
            self.stop()
            await task
        if stream_id_key(self.applied) < stream_id_key(entry_id):
            raise RuntimeError(f"the engine of {self.rules.name} stopped before {entry_id}")

    async def _release(self, token: int) -> None:
        """Hand the lease back at shutdown so that a successor need not wait for its TTL."""
        try:
            await asyncio.wait_for(self.store.release_lease(token), timeout=1)
        except (TimeoutError, *REDIS_UNAVAILABLE):
            log.warning("could not release the lease of %s; it expires by itself", self.rules.name)

    async def _acquire(self) -> int:
        """A fencing token once the lease is ours; 0 if asked to stop first."""
        while not self._stopping.is_set():
            asked = time.monotonic()
            token = await self.store.acquire_lease(self.lease_ttl_ms)
            if token:
                self._lease_until = asked + self.lease_ttl_ms / 1000
                log.info("holding the lease of %s with token %d", self.rules.name, token)
                return token
            await self._pause(self.lease_ttl_ms / 4000)
        return 0

    @staticmethod
    async def _until_over(over: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        finally:
            over.set()

    async def _keep_lease(self, token: int, over: asyncio.Event) -> None:
        while not (self._stopping.is_set() or over.is_set()):
            await self._renew(token, self._reported())
            await pause(over, self.lease_ttl_ms / 3000)

    async def _renew(self, token: int, trading: str) -> None:
        """Renew the lease, reporting `trading` beside it ('' reports nothing); LeaseLost if
        it is another's."""
        # Redis renewed it after `asked`: the lease holds at least until asked + TTL.
        asked = time.monotonic()
        if not await self.store.renew_lease(token, self.lease_ttl_ms, trading):
            raise LeaseLost(self.rules.name)
        self._lease_until = asked + self.lease_ttl_ms / 1000

    def _reported(self) -> str:
        """The trading state a renewal reports: the committed one once this leader has
        recovered ('' before: what it holds may be a former lead's)."""
        return self.committed_trading if self._leading else ""

    async def _trim_events(self, over: asyncio.Event) -> None:
        """Cap the events stream on a clock of its own, off the batch path (no round trip per
        batch), never past what storage has acknowledged: while dbproc is behind the stream
        grows instead (engine_events_unstored says by how much) and nothing is lost."""
        while not (self._stopping.is_set() or over.is_set()):
            trimmed, unstored = await self.store.trim_events(self.events_maxlen)
            self.metrics.events_trimmed.inc(trimmed)
            self.metrics.events_unstored.set(unstored)
            if unstored > self.events_maxlen:
                log.warning(
                    "%s: %d events not yet stored, more than the cap %d: is dbproc running?",
                    self.rules.name,
                    unstored,
                    self.events_maxlen,
                )
            await pause(over, self.events_trim_seconds)

    async def _lead(self, token: int, over: asyncio.Event) -> None:
        await self.recover()
        # Reported before it leads: a ready engine's trading state is always in Redis.
        await self._renew(token, self.committed_trading)
        self._leading = True
        batch: PreparedBatch | None = None  # matched, not committed
        entries: list[InputEntry] = []  # read, not matched: after `batch`, else after applied
        while not (self._stopping.is_set() or over.is_set()):
            self._reap_snapshot()
            if batch is None:
                if self._snapshot_due():
                    await self.snapshot(token)
                # Input that came in during the last commit says more is coming: read what
                # follows it too, so that its matching hides the next commit's round trip.
                busy = bool(entries)
                entries = entries or await self._read(self.applied, self.block_ms)
                if not entries:
                    continue
                batch = self._match_batch(token, self.applied, entries)
                entries = await self._read(batch.record.last_input_id, None) if busy else []
            batch, entries = await self._commit_and_match_next(token, batch, entries)

    async def _commit_and_match_next(
        self, token: int, batch: PreparedBatch, entries: list[InputEntry]
    ) -> tuple[PreparedBatch | None, list[InputEntry]]:
        """Commit `batch` and, while the commit runs, match `entries` (what was read after
        it), unless a snapshot is due: a snapshot forks the committed state only. The commit
        goes with the read of what follows, one round trip for both (Redis answers the two
        together, once both ran). The next batch's commit is sent only after this one answered
        'ok', and names the input this one ended at; a refused commit throws the state away,
        the batch matched ahead with it, and nothing of that batch was visible. (The next
        batch matched, the entries read after it, or all the entries read if none was.)"""
        clock = self.metrics.stages
        sent = time.perf_counter_ns()
        snapshot_due = self._snapshot_due()
        read_after = entries[-1].entry_id if entries else batch.record.last_input_id
        pending = await self.store.send_commit(
            batch.args, None if snapshot_due else read_after, self.batch_max
        )
        try:
            clock.start()
            ahead = None
            if entries and not snapshot_due:
                ahead, entries = self._match_batch(token, batch.record.last_input_id, entries), []
                clock.start()
            result, read = await pending.answers()
            clock.lap(stages.WAIT)
        finally:
            await pending.close()
        more = new_entries(read)
        clock.lap(stages.PARSE)
        self._committed(batch, result, time.perf_counter_ns() - sent)
        return ahead, entries + more

    async def _read(self, after: str, block_ms: int | None) -> list[InputEntry]:
        """The next batch's entries after `after` (timed only when there are some: an empty
        read is idle time, not a batch's)."""
        clock = self.metrics.stages
        clock.start()
        reply = await self.store.read_new_reply(after, self.batch_max, block_ms)
        if not reply:
            return []
        clock.lap(stages.READ)
        entries = new_entries(reply)
        clock.lap(stages.PARSE)
        return entries

    # ---- recovery -----------------------------------------------------------------------

    async def recover(self) -> None:
        """Rebuild the engine from the snapshot and the committed input after it."""
        started = time.perf_counter()
        self._stop_snapshot()
        if self.freeze_heap:
            gc.unfreeze()  # the state about to be thrown away must be collectable again
        snapshot = await self.store.load_snapshot()
        if snapshot is None:
            engine, cursor = Engine(self.rules), "0-0"
        else:
            engine, cursor = load_engine(self.rules, snapshot.state), snapshot.input_id
        applied = await self.store.applied()
        records = await self.store.batches()
        boundaries = {record.last_input_id: record.seq for record in records}
        self.engine = engine
        while stream_id_key(cursor) < stream_id_key(applied):
            entries = await self.store.read_range(cursor, applied, REPLAY_CHUNK)
            if not entries:
                raise RecoveryMismatch(f"input after {cursor} up to {applied} is missing")
            for entry in entries:
                self._apply(entry, decoded(entry.payload))
                seq = boundaries.get(entry.entry_id)
                if seq is not None:
                    engine.flush_depth(entry.entry_id, entry.ts)
                    if engine.seq != seq:
                        raise RecoveryMismatch(
                            f"replay reached seq {engine.seq} at {entry.entry_id}, committed {seq}"
                        )
                engine.out.clear()
            cursor = entries[-1].entry_id
        if cursor != (snapshot.input_id if snapshot else "0-0") and cursor not in boundaries:
            raise RecoveryMismatch(f"no batch record ends at the applied input {applied}")
        self.applied = applied
        self.committed_trading = engine.trading
        self.epoch = await self.store.new_epoch(engine.seq, engine.trade_seq)
        self._epoch_field = self.epoch.encode()
        self._since_snapshot = 0
        if self.freeze_heap:
            gc.collect()  # what recovery threw away (a book is cyclic), before it is frozen
            self._freeze_heap()
        self.metrics.recoveries.inc()
        self.metrics.book_orders.set(len(engine.orders))
        log.info(
            "recovered %s at input %s, seq %d, %d resting orders, in %.3f s; epoch %d",
            self.rules.name,
            applied,
            engine.seq,
            len(engine.orders),
            time.perf_counter() - started,
            self.epoch.epoch,
        )

    # ---- one batch ----------------------------------------------------------------------

    async def _run_batch(self, token: int, entries: list[InputEntry]) -> None:
        """Match and commit one batch, alone (no read ahead): a batch at a time, as tests
        drive the service."""
        batch = self._match_batch(token, self.applied, entries)
        started = time.perf_counter_ns()
        result = await self.store.commit_with(batch.args)
        self._committed(batch, result, time.perf_counter_ns() - started)

    def _match_batch(self, token: int, previous: str, entries: list[InputEntry]) -> PreparedBatch:
        """Apply a batch that follows input `previous`; what its commit will send."""
        clock = self.metrics.stages
        commands = [decoded(entry.payload) for entry in entries]
        clock.lap(stages.DECODE)
        engine = self.engine
        replies: list[tuple[InputEntry, int, int]] = []
        for entry, command in zip(entries, commands, strict=True):
            start = len(engine.out)
            self._apply(entry, command)
            if entry.reply_to:
                replies.append((entry, start, len(engine.out)))
        clock.lap(stages.MATCH)
        last = entries[-1]
        depth_changed = bool(engine.dirty_bids or engine.dirty_asks)
        engine.flush_depth(last.entry_id, last.ts)
        depth = self._depth_value() if depth_changed else b""
        clock.lap(stages.DEPTH)
        events, engine.out = engine.out, []
        moves = balance_moves(self.rules, events)
        clock.lap(stages.SETTLE)
        record = BatchRecord(last.entry_id, engine.seq)
        args = self.store.commit_args(
            token,
            previous,
            record,
            moves,
            encode_events(events) if events else b"",
            depth,
            [
                (
                    keys.reply_channel(entry.reply_to),
                    encode_reply(Reply(entry.entry_id, events[a:b])),
                )
                for entry, a, b in replies
            ],
            self._epoch_field,
        )
        clock.lap(stages.ENCODE)
        return PreparedBatch(
            record, last.ts, len(entries), len(engine.orders), engine.trading, args
        )

    def _committed(self, batch: PreparedBatch, result: str, round_trip_ns: int) -> None:
        """Note a batch's commit; raises unless it is committed."""
        self.metrics.stages.observe(stages.COMMIT, round_trip_ns)
        self.metrics.commit_seconds.observe(round_trip_ns / 1e9)
        if result == "fenced":
            raise LeaseLost(self.rules.name)
        if result == "stale":
            raise CommitUncertain(f"applied is no longer {self.applied}: state unknown")
        if result != "ok":
            raise LedgerBroken(f"commit of {batch.record} refused: {result}")
        self.applied = batch.record.last_input_id
        self.committed_trading = batch.trading
        self._since_snapshot += batch.commands
        self.metrics.commands.inc(batch.commands)
        self.metrics.batch_size.observe(batch.commands)
        self.metrics.book_orders.set(batch.book_orders)
        self.metrics.lag_seconds.set(max(0.0, time.time() - batch.last_ts / 1000))

    def _apply(self, entry: InputEntry, command: Command | None) -> None:
        """Apply one input entry (`command`: its payload decoded, None if it does not decode);
        anything wrong with it is refused, never raised."""
        engine = self.engine
        if (
            isinstance(command, Place)
            and command.user == entry.user
            and (entry.locked == 0 or entry.asset == self._spent_asset(command.side))
        ):
            engine.place_locked(command, entry.locked, entry.entry_id, entry.ts)
        elif (
            isinstance(command, PlaceList)
            and command.user == entry.user
            and command.legs
            and (entry.locked == 0 or entry.asset == self._spent_asset(command.legs[0].side))
        ):
            engine.place_list(command, entry.locked, entry.entry_id, entry.ts)
        elif (
            command is not None and not isinstance(command, Place | PlaceList) and not entry.locked
        ):
            engine.process(command, entry.entry_id, entry.ts)
        else:
            side = BUY if entry.asset == self.rules.quote else SELL
            order_id = command.order_id if isinstance(command, Place) else ""
            engine.refuse(
                order_id,
                entry.user,
                side,
                "invalid",
                ResultCode.INVALID_COMMAND,
                entry.locked,
                entry.entry_id,
                entry.ts,
            )

    def _spent_asset(self, side: str) -> str:
        return self.rules.quote if side == BUY else self.rules.base

    def _depth_value(self) -> bytes:
        engine = self.engine
        return encode_depth(
            DepthValue(
                engine.depth_update_id,
                engine.bids.depth(self.depth_levels),
                engine.asks.depth(self.depth_levels),
            )
        )

    # ---- snapshots ----------------------------------------------------------------------

    def _snapshot_due(self) -> bool:
        if not self._since_snapshot or self._snapshot_child is not None:
            return False
        return self._since_snapshot >= self.snapshot_every or (
            time.monotonic() - self._snapshot_at >= self.snapshot_seconds
        )

    async def snapshot(self, token: int) -> None:
        """Snapshot the committed state from a forked child, so matching stands still only
        for the fork; the child stores it (fenced by the lease), and the script drops the input
        and batch records it covers. One snapshot at a time."""
        if self._snapshot_child is not None:
            return
        snapshot_input, seq = self.applied, self.engine.seq
        clock = self.metrics.stages
        clock.start()
        if self.freeze_heap:
            self._freeze_heap()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = write_snapshot(
                    self._sync_client_kwargs(),
                    self.store,
                    token,
                    Snapshot(snapshot_input, seq, dump_engine(self.engine)),
                )
            finally:
                os._exit(code)
        clock.lap(stages.SNAPSHOT)
        self.metrics.snapshot_seconds.observe(clock.last_seconds)
        self._snapshot_child = pid
        self._since_snapshot = 0
        self._snapshot_at = time.monotonic()

    @staticmethod
    def _freeze_heap() -> None:
        """Move every object alive now out of the collector's generations (`gc.freeze`): a
        full collection visits every tracked object, and with the imports and the book in
        the oldest generation it stood matching still for 16-40 ms, several times a second
        under load. Frozen at each recovery and snapshot, the oldest generation holds only
        what came since the last snapshot. Objects frozen are never collected as cycles;
        the engine's state leaves none behind (a resting order is unlinked from its level
        when it leaves), and a recovery unfreezes and collects what it throws away. Before
        a fork it is also what the gc docs advise: the child's collector touches no page of
        the frozen objects."""
        gc.freeze()

    def _reap_snapshot(self) -> None:
        """Notice a finished snapshot child (a failed one is retried at the next interval)."""
        if self._snapshot_child is None:
            return
        done, status = os.waitpid(self._snapshot_child, os.WNOHANG)
        if not done:
            return
        self._snapshot_child = None
        code = os.waitstatus_to_exitcode(status)
        if code == SNAPSHOT_FENCED:
            raise LeaseLost(self.rules.name)
        if code != 0:
            log.warning(
                "snapshot of %s failed (exit %d); the next one retries", self.rules.name, code
            )

    def _stop_snapshot(self) -> None:
        """Kill a running snapshot child before the state is rebuilt from Redis."""
        if self._snapshot_child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._snapshot_child, signal.SIGKILL)
            os.waitpid(self._snapshot_child, 0)
            self._snapshot_child = None

    def _sync_client_kwargs(self) -> dict[str, Any]:
        settings = self.store.client.connection_pool.connection_kwargs
        return {
            name: settings[name]
            for name in ("host", "port", "db", "username", "password")
            if name in settings
        }


SNAPSHOT_FENCED = 3


def write_snapshot(
    client_kwargs: dict[str, Any], store: MarketStore, token: int, snapshot: Snapshot
) -> int:
    """In the snapshot child: store the snapshot over a fresh connection; an exit code."""
    client = redis.Redis(**client_kwargs, retry=Retry(NoBackoff(), 0))
    try:
        result = client.register_script(script_source("snapshot"))(
            keys=[store.lease, store.snapshot_key, store.input, store.batches_key],
            args=[token, msgspec.msgpack.encode(snapshot), snapshot.input_id],
        )
    finally:
        client.close()
    return 0 if result == b"ok" else SNAPSHOT_FENCED


def balance_moves(rules: MarketRules, events: Iterable[Event]) -> list[tuple[str, str, int]]:
    """The net balance moves of a batch's events: (user, "ASSET:free|locked", delta)."""
    delta = Ledger([rules], strict=False)
    delta.apply_all(events)
    moves: list[tuple[str, str, int]] = []
    for user, assets in delta.accounts.items():
        for asset, (free, locked) in assets.items():
            if free:
                moves.append((user, keys.free_field(asset), free))
            if locked:
                moves.append((user, keys.locked_field(asset), locked))
    return moves
