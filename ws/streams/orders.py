"""`orders` (authenticated): the user's order updates and fills, straight from the events,
rendered only for users who follow theirs."""

from collections.abc import Callable
from typing import Any

from ws import protocol
from ws.feeds import MarketFeed
from ws.hub import topic_of
from ws.protocol import Stream
from ws.render import Renderer
from ws.streams.kind import Host, PrivateKind
from xch.schemas import Event, OrderAccepted, OrderDone, OrderRejected, OrderTriggered, Trade

ORDERS = Stream("orders")
_RENDER: dict[type, Callable[[Renderer, Any], dict[str, Any]]] = {
    OrderAccepted: Renderer.order_accepted,
    OrderDone: Renderer.order_done,
    OrderRejected: Renderer.order_rejected,
    OrderTriggered: Renderer.order_triggered,
}


class OrdersKind(PrivateKind):
    kind = ORDERS.kind

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        hub = feed.hub
        if isinstance(event, Trade):
            for user, taker in ((event.maker_user, False), (event.taker_user, True)):
                topic = topic_of(ORDERS, user)
                if hub.has_subscribers(topic):
                    payload = feed.render.fill(event, taker=taker)
                    hub.publish(topic, protocol.data(ORDERS.name, payload))
        elif isinstance(event, OrderAccepted | OrderDone | OrderRejected | OrderTriggered):
            topic = topic_of(ORDERS, event.user)
            if hub.has_subscribers(topic):
                payload = _RENDER[type(event)](feed.render, event)
                hub.publish(topic, protocol.data(ORDERS.name, payload))
