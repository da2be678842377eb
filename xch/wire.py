"""How commands, events and replies travel through Redis (MessagePack, via msgspec).

An entry of a market's input stream (`xch:{M}:in`) has these fields, written by the
lock-and-enqueue script in one atomic step with the lock itself:

- `c`: the command (`encode_command`),
- `u`, `a`, `l`: the user, asset and amount (minor units) locked for it (`a` empty, `l` 0 for
  commands that lock nothing) — the engine trusts these over the command's own `locked`, so
  that even an undecodable command gives back exactly what was locked,
- `r`: the api instance to reply to (may be empty).

An entry of `xch:{M}:events` is one committed batch: one field `e` holding the batch's events
in seq order (`encode_events`), so a consumer sees a batch whole or not at all. A reply on
`xch:reply:{api}` is a `Reply`: the input id and every event that command produced.
"""

from typing import Any

import msgspec

from xch.schemas import Command, Event

FIELD_COMMAND = b"c"
FIELD_USER = b"u"
FIELD_ASSET = b"a"
FIELD_LOCKED = b"l"
FIELD_REPLY = b"r"
FIELD_EVENT = b"e"


class Reply(msgspec.Struct, frozen=True):
    input_id: str
    events: list[Event]


_encoder = msgspec.msgpack.Encoder()
_command_decoder = msgspec.msgpack.Decoder(Command)
_events_decoder = msgspec.msgpack.Decoder(list[Event])
_reply_decoder = msgspec.msgpack.Decoder(Reply)


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
