"""Binance's user-data stream at `/ws/<listenKey>` (ws.binance_user renders it): private,
one topic per user, opened by a listen key rather than parsed from a name (ws.binance)."""

from ws.binance_user import USER_DATA
from ws.feeds import MarketFeed
from ws.streams.kind import Host, PrivateKind
from xch.schemas import Event


class UserDataKind(PrivateKind):
    kind = USER_DATA

    def on_batch(self, host: Host, feed: MarketFeed, events: list[Event]) -> None:
        host.binance_users.batch(feed, events)
