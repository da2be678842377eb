"""How commands, events and replies travel through Redis (MessagePack, via msgspec).

An entry of a market's input stream (`xch:{M}:in`) has these fields, written by the
lock-and-enqueue script in one atomic step with the lock itself:

- `c`: the command (`encode_command`),
- `u`, `a`, `l`: the user, asset and amount (minor units) locked for it (`a` empty, `l` 0 for
  commands that lock nothing) — the engine trusts these over the command's own `locked`, so
  that even an undecodable command gives back exactly what was locked,
- `r`: the api instance to reply to (may be empty).

An entry of `xch:{M}:events` is one committed batch: a field `e` holding the batch's events
in seq order (`encode_events`), so a consumer sees a batch whole or not at all, and a field
`h`, the engine's `Epoch` (entries written before epochs have none: epoch 0). A reply on
`xch:reply:{api}` is a `Reply`: the input id and every event that command produced.

An entry of the funds stream (`xch:funds`) is one deposit or withdrawal, written by the funds
script atomically with the balance change and read by dbproc and ws: `FundsEntry`, its
fields named by the `FUNDS_*` constants below.
"""

from collections.abc import Mapping
from typing import Any

import msgspec

from xch.schemas import Command, Event

FIELD_COMMAND = b"c"
FIELD_USER = b"u"
FIELD_ASSET = b"a"
FIELD_LOCKED = b"l"
FIELD_REPLY = b"r"
FIELD_EVENT = b"e"
FIELD_EPOCH = b"h"

# The fields of a funds stream entry, as ledger/lua/funds.lua writes them (its XADD).
FUNDS_SEQ = b"s"
FUNDS_USER = b"u"
FUNDS_ASSET = b"a"
FUNDS_AMOUNT = b"n"
FUNDS_REFERENCE = b"r"
FUNDS_TIME = b"t"


class Epoch(msgspec.Struct, frozen=True):
    """One engine incarnation's stretch of a market's history (docs/storage.md, "Redis
    rollback"): the engine draws a new `epoch` each time it builds its state from Redis and
    stamps it on every events entry it commits, with the `previous` epoch (the one of the
    stream's last entry then, 0 for none) and the `seq` and `trade_id` its state resumed
    from. Text in the entry: the four integers, space-separated."""

    epoch: int
    previous: int
    seq: int
    trade_id: int

    def encode(self) -> bytes:
        return f"{self.epoch} {self.previous} {self.seq} {self.trade_id}".encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> "Epoch":
        """An entry's `h` field; epoch 0 (which resumed from nothing) for an entry without."""
        if not raw:
            return NO_EPOCH
        epoch, previous, seq, trade_id = (int(part) for part in raw.split())
        return cls(epoch, previous, seq, trade_id)


NO_EPOCH = Epoch(0, 0, 0, 0)
"""The epoch of entries written before epochs."""


class Reply(msgspec.Struct, frozen=True):
    input_id: str
    events: list[Event]


_encoder = msgspec.msgpack.Encoder()
_command_decoder = msgspec.msgpack.Decoder(Command)
_events_decoder = msgspec.msgpack.Decoder(list[Event])
_reply_decoder = msgspec.msgpack.Decoder(Reply)


class FundsEntry(msgspec.Struct, frozen=True):
    """A deposit (positive `amount`) or withdrawal (negative), in minor units of `asset`;
    `seq` increases over the stream and is never reused, even by a restored Redis
    (`xch.keys.FUNDS_SEQ`, drawn with a clock floor), `reference` the caller's free
    text, `ts` Unix milliseconds."""

    seq: int
    user: str
    asset: str
    amount: int
    reference: str
    ts: int


def decode_funds_entry(fields: Mapping[bytes, bytes]) -> FundsEntry:
    """A funds stream entry's fields (as a Redis client without decoding returns them)."""
    return FundsEntry(
        seq=int(fields[FUNDS_SEQ]),
        user=fields[FUNDS_USER].decode(),
        asset=fields[FUNDS_ASSET].decode(),
        amount=int(fields[FUNDS_AMOUNT]),
        reference=fields[FUNDS_REFERENCE].decode(),
        ts=int(fields[FUNDS_TIME]),
    )


def encode_command(command: Command) -> bytes:
    return _encoder.encode(command)


def decode_command(data: bytes) -> Command:
    """Raises msgspec.DecodeError (a ValueError) for anything that is not a valid command."""
    command: Command = _command_decoder.decode(data)
    return command


def encode_events(events: list[Event]) -> bytes:
    return _encoder.encode(events)


def decode_events(data: bytes) -> list[Event]:
    events: list[Event] = _events_decoder.decode(data)
    return events


def encode_reply(reply: Reply) -> bytes:
    return _encoder.encode(reply)


def decode_reply(data: bytes) -> Reply:
    return _reply_decoder.decode(data)


def as_text(value: Any) -> str:
    """A Redis reply (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)
