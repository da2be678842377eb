"""The lean protocol serves WebSockets as uvicorn's own does, without keeping the handshake,
with its small receive queue and flow-control flag; and ws under a protocol it cannot write
to directly still answers, through ASGI sends."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import connect

from tests.harness.processes import free_port
from tests.harness.servers import RedisServer, as_user
from ws.app import create_app
from ws.config import Settings
from ws.server_protocol import Flag, Inbox, LeanWebSocketProtocol


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, then sends back each text message until the client leaves."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message["text"]})


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, **options: Any) -> AsyncIterator[uvicorn.Server]:
    """`app` under uvicorn in this process, on a free port."""
    config = uvicorn.Config(app, port=free_port(), log_level="warning", **options)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await serving


async def test_a_connection_is_served_without_its_handshake_kept() -> None:
    lean = {"ws": LeanWebSocketProtocol, "ws_per_message_deflate": False, "lifespan": "off"}
    async with serving(echo, **lean) as server:
        url = f"ws://127.0.0.1:{server.config.port}/"
        async with connect(url) as client:
            for text in ("one", "two", "é" * 200):
                await client.send(text)
                assert await client.recv() == text
            (protocol,) = server.server_state.connections
            assert isinstance(protocol, LeanWebSocketProtocol)
            assert isinstance(protocol.queue, Inbox) and isinstance(protocol.writable, Flag)
            assert not hasattr(protocol, "request") and not hasattr(protocol, "response")


async def test_the_inbox_hands_over_in_order_and_wakes_its_reader() -> None:
    inbox = Inbox()
    reading = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reading.done()
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert await reading == "a"
    assert not inbox.empty()
    assert await inbox.get() == "b"
    assert inbox.empty()


async def test_the_flag_holds_waiters_until_set_and_forgets_those_that_gave_up() -> None:
    flag = Flag()
    assert flag.is_set() and await flag.wait()
    flag.clear()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.01)
    assert flag.waiters == []
    waiting = [asyncio.create_task(flag.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in waiting)
    flag.set()
    assert await asyncio.gather(*waiting) == [True, True]


async def test_without_direct_writes_every_answer_goes_through_asgi_sends(
    redis_server: RedisServer,
) -> None:
    """uvicorn's protocol with compression (ws's frames are uncompressed, so no direct
    writes): each backlog is sent by a sender task, the answers in order."""
    app = create_app(Settings(redis_url=as_user(redis_server.url, "ws")))
    async with (
        serving(app, lifespan="on") as server,
        connect(f"ws://127.0.0.1:{server.config.port}/ws") as client,
    ):
        for request_id in range(20):
            await client.send(orjson.dumps({"method": "PING", "id": request_id}).decode())
        answers = [orjson.loads(await client.recv()) for _ in range(20)]
    assert answers == [{"result": "pong", "id": request_id} for request_id in range(20)]
