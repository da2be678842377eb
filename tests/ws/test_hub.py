"""The hub's turn: clients with the same topics share one join of the turn's frames, each
client's messages in the order they were published, one write per client."""

import asyncio

from ws.frames import FrameWriter, outgoing
from ws.hub import Client, Hub
from ws.metrics import WsMetrics
from ws.protocol import Stream

TRADE = Stream("trade", "a-usd")
DEPTH = Stream("depth", "a-usd")


class Socket(FrameWriter):
    """A client's socket: records each write; takes nothing while `full`."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.full = False

    def writable(self) -> bool:
        return not self.full

    def write_now(self, frames: bytes) -> None:
        self.writes.append(frames)


def frames(*texts: str) -> bytes:
    return b"".join(outgoing(text)[1] for text in texts)


def connect(hub: Hub, *streams: Stream) -> tuple[Client, Socket]:
    socket = Socket()
    client = Client(100, socket)
    for stream in streams:
        hub.subscribe(client, stream)
    return client, socket


def snapshot(stream: Stream, user: str | None) -> list[str]:
    return [f"snapshot {stream.name}"]


async def a_turn() -> None:
    """The hub writes once per turn of the event loop."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_clients_with_the_same_topics_share_one_write_of_the_turn() -> None:
    hub = Hub(WsMetrics(), 3, snapshot)
    both, both_socket = connect(hub, TRADE, DEPTH)
    other, other_socket = connect(hub, DEPTH, TRADE)
    trades, trades_socket = connect(hub, TRADE)
    await a_turn()  # the turn in which they subscribed
    hub.publish(TRADE.topic, "t1")
    hub.publish(DEPTH.topic, "d1")
    hub.publish(TRADE.topic, "t2")
    await a_turn()
    assert both_socket.writes == [frames("t1", "d1", "t2")]
    assert other_socket.writes[0] is both_socket.writes[0]  # joined once for both
    assert trades_socket.writes == [frames("t1", "t2")]
    assert hub.metrics.registry.get_sample_value("ws_messages_out_total") == 8
    assert not (both.backlog or other.backlog or trades.backlog)


async def test_a_client_subscribing_mid_turn_gets_its_messages_after_its_snapshot() -> None:
    hub = Hub(WsMetrics(), 3, snapshot)
    _, trader_socket = connect(hub, TRADE)
    await a_turn()
    hub.publish(TRADE.topic, "t1")
    late, late_socket = connect(hub)
    hub.subscribe(late, TRADE)
    hub.send_all(late, snapshot(TRADE, None))
    hub.publish(TRADE.topic, "t2")
    await a_turn()
    assert trader_socket.writes == [frames("t1", "t2")]
    assert late_socket.writes == [frames("snapshot trade@a-usd", "t2")]
    hub.publish(TRADE.topic, "t3")  # the next turn: they share again
    await a_turn()
    assert late_socket.writes[1] is trader_socket.writes[1]


async def test_an_answer_keeps_its_place_among_the_turns_messages() -> None:
    hub = Hub(WsMetrics(), 3, snapshot)
    client, socket = connect(hub, TRADE, DEPTH)
    await a_turn()
    hub.publish(TRADE.topic, "t1")
    hub.send(client, "answer")
    hub.publish(DEPTH.topic, "d1")
    await a_turn()
    assert socket.writes == [frames("t1", "answer", "d1")]


async def test_a_full_socket_keeps_the_turns_messages_in_its_backlog() -> None:
    hub = Hub(WsMetrics(), 3, snapshot)
    _, reader_socket = connect(hub, TRADE)
    stalled, stalled_socket = connect(hub, TRADE)
    await a_turn()
    woken: list[bool] = []
    stalled.wake = lambda: woken.append(True)
    stalled_socket.full = True
    hub.publish(TRADE.topic, "t1")
    await a_turn()
    assert reader_socket.writes == [frames("t1")]
    assert stalled_socket.writes == []
    assert [text for text, _ in stalled.backlog] == ["t1"]
    assert woken  # a sender task is started to wait for the socket
    stalled_socket.full = False
    hub.publish(TRADE.topic, "t2")
    await a_turn()
    assert stalled_socket.writes == [frames("t1", "t2")]
    hub.publish(TRADE.topic, "t3")
    await a_turn()
    assert stalled_socket.writes[1] is reader_socket.writes[2]


async def test_a_client_that_changes_its_topics_shares_with_its_new_set() -> None:
    hub = Hub(WsMetrics(), 3, snapshot)
    _, trades_socket = connect(hub, TRADE)
    mover, mover_socket = connect(hub, TRADE, DEPTH)
    await a_turn()
    hub.unsubscribe(mover, DEPTH)
    await a_turn()
    hub.publish(TRADE.topic, "t1")
    hub.publish(DEPTH.topic, "d1")
    await a_turn()
    assert mover_socket.writes == trades_socket.writes == [frames("t1")]
    assert mover_socket.writes[0] is trades_socket.writes[0]
    hub.remove(mover)
    hub.publish(TRADE.topic, "t2")
    await a_turn()
    assert mover_socket.writes == [frames("t1")]
    assert list(hub.groups) == [frozenset({TRADE.topic})]
    assert hub.groups_of == {TRADE.topic: {frozenset({TRADE.topic})}}
