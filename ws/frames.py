"""Frames built once, written to every subscriber as they are.

Every subscriber of a topic is sent the same text, a server's frames are not masked, and ws
runs without compression: so a message's WebSocket frame is built once per topic, and what
queued up for one client leaves in a single write (ws/hub.py writes it directly while the
socket takes more). ASGI has no call for that, so the writer
reaches the uvicorn protocol object behind the raw ASGI `send` (its transport and flow
control); under any other server `FrameWriter.of` gives None and ws sends through ASGI.
"""

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

Outgoing = tuple[str, bytes]
"""A message as text (for ASGI sends) and as a complete text frame."""


def outgoing(text: str) -> Outgoing:
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65_536:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return text, head + payload


class FrameWriter:
    __slots__ = ("protocol", "transport", "writable_flag")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.writable_flag = protocol.writable

    @classmethod
    def of(cls, send: Any) -> "FrameWriter | None":
        protocol = getattr(send, "__self__", None)
        compressed = getattr(getattr(protocol, "config", None), "ws_per_message_deflate", True)
        if isinstance(protocol, WebSocketsSansIOProtocol) and not compressed:
            return cls(protocol)
        return None

    def writable(self) -> bool:
        """The transport takes more now (uvicorn's flow control) and the connection is open
        (one call: it is asked of every client in every turn the client has messages)."""
        protocol = self.protocol
        return self.writable_flag.is_set() and not (
            protocol.disconnected or protocol.close_sent or self.transport.is_closing()
        )

    def write_now(self, frames: bytes) -> None:
        """Whole frames in one write; only when `writable()`."""
        self.transport.write(frames)

    async def write(self, batch: list[Outgoing], timeout: float) -> None:
        """Write whole frames once the transport takes more (as uvicorn's own send waits);
        TimeoutError if it does not within `timeout` seconds."""
        protocol = self.protocol
        if not protocol.writable.is_set():  # the common case needs no timer
            await asyncio.wait_for(protocol.writable.wait(), timeout)
        if not self.writable():  # the flag is set: the connection is closed
            raise ConnectionError("connection closed")
        self.write_now(b"".join([frame for _, frame in batch]))
