"""`portfolio` (authenticated): the user's portfolio as `GET /api/v1/portfolio` returns it,
whole when it changed (ws.portfolio computes it)."""

from ws.feeds import MarketFeed
from ws.protocol import Stream
from ws.streams.kind import Host, PrivateKind
from xch.schemas import Event
from xch.wire import FundsEntry


class PortfolioKind(PrivateKind):
    kind = "portfolio"

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        if user is not None:
            await host.portfolio.load(user)

    def snapshots(self, host: Host, stream: Stream, user: str | None) -> list[str]:
        return [] if user is None else host.portfolio.snapshot(user)

    def subscribed(self, host: Host, stream: Stream, user: str | None) -> None:
        if user is not None:
            host.portfolio.touched(user)

    def on_batch(self, host: Host, feed: MarketFeed, events: list[Event]) -> None:
        host.portfolio.on_events(feed, events)

    def on_funds(self, host: Host, funds: FundsEntry) -> None:
        host.portfolio.touched(funds.user)
