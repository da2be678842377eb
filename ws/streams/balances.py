"""`balances` (authenticated): every asset's balance first, then the assets that changed
after each batch or deposit that touched the user (read back by ws.private)."""

from ws.feeds import MarketFeed
from ws.protocol import Stream
from ws.streams.kind import Host, PrivateKind
from xch.schemas import Event, Funds, OrderAccepted, OrderDone, OrderRejected, Trade
from xch.wire import FundsEntry


class BalancesKind(PrivateKind):
    kind = "balances"

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        if user is not None:
            await host.private.load(user)

    def snapshots(self, host: Host, stream: Stream, user: str | None) -> list[str]:
        return [] if user is None else host.private.snapshot(user)

    def subscribed(self, host: Host, stream: Stream, user: str | None) -> None:
        if user is not None:
            host.private.touched(user)  # a change during the load

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        # An order trigger moves no funds: the trades and the end that follow do.
        if isinstance(event, Trade):
            host.private.touched(event.maker_user)
            host.private.touched(event.taker_user)
        elif isinstance(event, OrderAccepted | OrderDone | OrderRejected | Funds):
            host.private.touched(event.user)

    def on_funds(self, host: Host, funds: FundsEntry) -> None:
        host.private.touched(funds.user)
