"""Reading a stream through the `dbproc` consumer group, acknowledging only what is stored.

A consumer first re-reads its own pending entries (read before a crash, never acknowledged),
then takes over entries other consumers left pending too long, then reads new ones. Storing
is retried with backoff until it succeeds: an entry is never acknowledged unstored. Several
reads may be stored at once, in their own transactions: the writer's claims make each entry
stored once, and its rows add up in any order (dbproc/writer.py).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio
from redis.exceptions import ResponseError

from xch.keys import DBPROC_GROUP
from xch.wire import as_text

log = logging.getLogger("dbproc")

# Check that no entry was trimmed before the group read it, just before reading new ones (in
# the same MULTI: nothing is trimmed or read between the check and the read). Redis counts the
# entries added to the stream that the group never read (its lag); if that is more than the
# stream holds, some of them were trimmed: when the stream's first entry comes after the
# group's last delivered one, every entry left is unread, and the difference was lost.
# (Counted only then, just before the group reads past the gap: once, and the cheap counts
# rule it out without reading an entry in the common case. The entries themselves are read
# outside the script: through Lua they would cost Redis twice the CPU.)
# KEYS[1] stream; ARGV[1] group
# Returns {entries lost, the group's last delivered id}.
GAP_CHECK = """
local function id_after(a, b)
  local a_ms, a_n = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_n = string.match(b, '^(%d+)-(%d+)$')
  a_ms, a_n, b_ms, b_n = tonumber(a_ms), tonumber(a_n), tonumber(b_ms), tonumber(b_n)
  return a_ms > b_ms or (a_ms == b_ms and a_n > b_n)
end
local function map(flat)
  local fields = {}
  for i = 1, #flat, 2 do
    fields[flat[i]] = flat[i + 1]
  end
  return fields
end
local lost, delivered = 0, ''
local length = redis.call('XLEN', KEYS[1])
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local group = map(row)
  if group['name'] == ARGV[1] then
    delivered = group['last-delivered-id']
    local unread = false
    if group['entries-read'] then
      unread = group['lag']  -- false if Redis cannot tell (entries deleted with XDEL)
    elseif delivered == '0-0' then  -- the group never read: everything added is unread
      unread = map(redis.call('XINFO', 'STREAM', KEYS[1]))['entries-added']
    end
    if unread and unread > length then
      local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
      if not first or id_after(first[1], delivered) then
        lost = unread - length
        -- count the lost entries as read, or Redis would go on counting them unread
        local read = (group['entries-read'] or 0) + lost
        redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], delivered, 'ENTRIESREAD', read)
      end
    end
  end
end
return {lost, delivered}
"""

Entry = tuple[str, dict[bytes, bytes]]
"""A stream entry: its id and its fields (empty if the entry was trimmed away)."""


def _fields(flat: list[bytes] | None) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}


def _entries(raw: Any) -> list[Entry]:
    return [(entry_id.decode(), _fields(flat)) for entry_id, flat in raw or []]


def _streams_entries(reply: Any) -> list[Entry]:
    """The entries of a raw XREADGROUP reply of one stream (none for an empty one)."""
    if not reply:
        return []
    # RESP3 answers a map of stream -> entries, RESP2 a list of [stream, entries].
    streams = list(reply.values()) if isinstance(reply, dict) else [item[1] for item in reply]
    return _entries(streams[0])


def log_lost(stream: str, count: int, how: str) -> None:
    log.error("dbproc: %d entries of %s lost before being stored (%s)", count, stream, how)


class GroupReader:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str,
        consumer: str,
        count: int,
        block_ms: int,
        claim_idle_ms: int,
        on_lost: Callable[[str, int, str], None] = log_lost,
    ) -> None:
        """`on_lost(stream, count, how)` reports entries that were trimmed before being
        stored: history then has a gap."""
        # Replies are parsed here, the same way for RESP2 and RESP3.
        self.raw = redis.asyncio.Redis(connection_pool=client.connection_pool)
        for command in ("XREADGROUP", "XAUTOCLAIM"):
            self.raw.response_callbacks.pop(command, None)
        self.stream = stream
        self.consumer = consumer
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.own_pending = True
        self.next_claim = 0.0
        self.gap_check = self.raw.register_script(GAP_CHECK)
        self.on_lost = on_lost

    async def ensure_group(self) -> None:
        try:
            await self.raw.xgroup_create(self.stream, DBPROC_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read(self) -> list[Entry]:
        if self.own_pending:
            entries = await self._read_group("0", block=False)
            self.own_pending = bool(entries)
            if entries:
                return entries
        if time.monotonic() >= self.next_claim:
            self.next_claim = time.monotonic() + self.claim_idle_ms / 1000
            claimed = await self._claim()
            if claimed:
                return claimed
        entries = await self._read_new_checked()
        return entries or await self._read_group(">", block=True)

    async def _read_new_checked(self) -> list[Entry]:
        """New entries, after reporting any the group never read because they were trimmed
        (one round trip: the check and the read in one MULTI)."""
        async with self.raw.pipeline(transaction=True) as pipe:
            await self.gap_check(keys=[self.stream], args=[DBPROC_GROUP], client=pipe)
            pipe.execute_command(
                "XREADGROUP", "GROUP", DBPROC_GROUP, self.consumer, "COUNT", self.count,
                "STREAMS", self.stream, ">",
            )  # fmt: skip
            (lost, delivered), reply = await pipe.execute()
        if lost:
            self.on_lost(self.stream, int(lost), f"trimmed unread after {as_text(delivered)}")
        return self._checked(_streams_entries(reply))

    def _checked(self, entries: list[Entry]) -> list[Entry]:
        """`entries`, reporting those read back empty: trimmed while pending (unstored)."""
        trimmed = [entry_id for entry_id, fields in entries if not fields]
        if trimmed:
            self.on_lost(
                self.stream, len(trimmed), f"trimmed while pending: {', '.join(trimmed[:10])}"
            )
        return entries

    async def _read_group(self, after: str, block: bool) -> list[Entry]:
        arguments: list[Any] = ["GROUP", DBPROC_GROUP, self.consumer, "COUNT", self.count]
        if block:
            arguments += ["BLOCK", self.block_ms]
        reply: Any = await self.raw.execute_command(  # type: ignore[no-untyped-call]
            "XREADGROUP", *arguments, "STREAMS", self.stream, after
        )
        return self._checked(_streams_entries(reply))

    async def _claim(self) -> list[Entry]:
        reply: Any = await self.raw.execute_command(  # type: ignore[no-untyped-call]
            "XAUTOCLAIM", self.stream, DBPROC_GROUP, self.consumer, self.claim_idle_ms, "0-0",
            "COUNT", self.count,
        )  # fmt: skip
        # XAUTOCLAIM drops from the pending list, and names, entries no longer in the stream
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:
            ids = ", ".join(as_text(entry_id) for entry_id in deleted[:10])
            self.on_lost(self.stream, len(deleted), f"trimmed while pending: {ids}")
        return self._checked(_entries(reply[1]))

    async def ack(self, entries: list[Entry]) -> None:
        await self.raw.xack(self.stream, DBPROC_GROUP, *[entry_id for entry_id, _ in entries])


async def consume(
    reader: GroupReader,
    store: Callable[[list[Entry]], Awaitable[None]],
    retry_max_seconds: float,
    on_error: Callable[[], None],
    writers: int = 1,
) -> None:
    """Read, store, acknowledge, forever; every failure is retried with backoff. While the
    consumer is behind (its reads come back full), up to `writers` reads are being stored at
    once, each acknowledged when its own store is done, so the database works on one while
    the next is read and decoded. Otherwise one at a time: what arrives meanwhile makes the
    next read larger, instead of many small transactions each paying its fixed cost."""
    delay = 0.05
    ready = False
    behind = False  # the last read was a full one: more is waiting
    storing: set[asyncio.Task[None]] = set()
    try:
        while True:
            try:
                if not ready:
                    await reader.ensure_group()
                    ready = True
                await _settle(storing, writers if behind and not reader.own_pending else 1)
                entries = await reader.read()
                behind = len(entries) >= reader.count
                if entries:
                    storing.add(asyncio.create_task(_store_and_ack(reader, store, entries)))
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception:
                on_error()
                # What failed is pending: once the other stores are done, it is read again.
                await asyncio.gather(*storing, return_exceptions=True)
                storing.clear()
                reader.own_pending = True
                log.exception("dbproc: %s failed; retrying in %.2f s", reader.stream, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, retry_max_seconds)
    finally:
        for task in storing:
            task.cancel()
        # Until a cancelled store has unwound it holds a pooled connection; left running (or
        # collected half-way, nothing else refers to it) it kept closing the pool waiting.
        await asyncio.gather(*storing, return_exceptions=True)


async def _store_and_ack(
    reader: GroupReader, store: Callable[[list[Entry]], Awaitable[None]], entries: list[Entry]
) -> None:
    await store(entries)
    await reader.ack(entries)


async def _settle(storing: set[asyncio.Task[None]], room: int) -> None:
    """Wait until fewer than `room` stores are running; a failed one raises its error.
    (Re-reading the consumer's own pending entries waits for every store: entries still
    being stored are pending too.)"""
    while True:
        for task in [task for task in storing if task.done()]:
            storing.discard(task)
            task.result()
        if len(storing) < room:
            return
        await asyncio.wait(storing, return_when=asyncio.FIRST_COMPLETED)
