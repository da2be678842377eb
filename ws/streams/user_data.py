"""Binance's user-data stream at `/ws/<listenKey>` (ws.binance_user renders it): private,
one topic per user, opened by a listen key rather than parsed from a name (ws.binance).
Its balance events: `outboundAccountPosition` after a change (ws.private, which reads the
balances back), `balanceUpdate` for a deposit or withdrawal."""

from ws.binance_user import USER_DATA
from ws.feeds import MarketFeed
from ws.protocol import Stream
from ws.streams.kind import Host, PrivateKind
from xch.schemas import Event
from xch.wire import FundsEntry


class UserDataKind(PrivateKind):
    kind = USER_DATA

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        if user is not None:  # what `outboundAccountPosition` reports changes against
            await host.private.load(user)

    def subscribed(self, host: Host, stream: Stream, user: str | None) -> None:
        if user is not None:
            host.private.touched(user)  # a change during the load

    def on_batch(self, host: Host, feed: MarketFeed, events: list[Event]) -> None:
        host.binance_users.batch(feed, events)

    def on_funds(self, host: Host, funds: FundsEntry) -> None:
        host.binance_users.balance_update(funds, host.private.scales.get(funds.asset))
