"""The private `portfolio` stream: the user's portfolio as `GET /api/v1/portfolio` returns it
(both are `xch.portfolio.view`), sent whole when it changed: after the user's fills, their
balance changes, and trades in a market whose price values what they hold. One task
recomputes the users marked meanwhile, then waits `portfolio_seconds`: at most one message
per user per period, however busy the markets.

Positions are folded from the fills dbproc stored (`storage.portfolio.positions`, so ws needs
`EXCHANGE_WS_POSTGRES_DSN` for this stream). They are re-read only after the user traded,
and again until the stored fills include the newest trade of the user this replica saw
(dbproc lags the engine). Balances are read from `xch:bal:{user}`; a market's last price is
the last stored trade's until this replica sees a trade, then that trade's price.
"""

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio
from redis.exceptions import RedisError

from storage import portfolio as stored
from ws import protocol
from ws.feeds import MarketFeed
from ws.hub import Hub, topic_of
from ws.private import Balances, parse_balances
from ws.protocol import ErrorCode, ProtocolError, Stream
from xch import keys
from xch.money import format_units
from xch.portfolio import MarketInfo, Position, view
from xch.schemas import Event, OrderAccepted, OrderDone, OrderRejected, Trade

log = logging.getLogger(__name__)

PORTFOLIO = Stream("portfolio")


@dataclass
class Watched:
    """One user whose portfolio someone follows."""

    positions: dict[str, Position] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    """Per market, the newest trade of the user this replica saw."""
    refill: bool = True
    """The positions must be read (again) from storage."""
    priced_by: set[str] = field(default_factory=set)
    """Markets whose last price values something the user holds."""
    message: str | None = None


class PortfolioStream:
    def __init__(
        self,
        hub: Hub,
        client: redis.asyncio.Redis,
        pool: asyncpg.Pool | None,
        period: float,
        retry_seconds: float,
    ) -> None:
        self.hub = hub
        self.client = client
        self.pool = pool
        self.period = period
        self.retry_seconds = retry_seconds
        self.users: dict[str, Watched] = {}
        self.markets: dict[str, MarketInfo] = {}
        self.prices: dict[str, str] = {}
        self.pending: set[str] = set()
        self.wake = asyncio.Event()
        self.running = True

    def _follows(self, user: str) -> bool:
        return self.hub.has_subscribers(topic_of(PORTFOLIO, user))

    def touched(self, user: str) -> None:
        """Something of the user's changed (a deposit, an order locking funds...)."""
        if self._follows(user):
            self.users.setdefault(user, Watched())
            self.pending.add(user)
            self.wake.set()

    def on_events(self, feed: MarketFeed, events: list[Event]) -> None:
        last_price = 0
        for event in events:
            if isinstance(event, Trade):
                last_price = event.price
                for user in (event.maker_user, event.taker_user):
                    watched = self.users.get(user)
                    if watched is not None:
                        seen = watched.seen.get(feed.name, 0)
                        watched.seen[feed.name] = max(seen, event.trade_id)
                        watched.refill = True
                    self.touched(user)
            elif isinstance(event, OrderAccepted | OrderDone | OrderRejected):
                self.touched(event.user)
        if last_price:
            self.prices[feed.name] = format_units(last_price, feed.rules.tick)
            for user, watched in self.users.items():
                if feed.name in watched.priced_by:
                    self.touched(user)

    # ---- computing ----------------------------------------------------------------------

    async def load(self, user: str) -> None:
        """The user's portfolio before a first subscription (its first message)."""
        if self.pool is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "the portfolio stream needs storage")
        watched = self.users.setdefault(user, Watched())
        if watched.message is None or not self._follows(user):  # else current: kept live
            try:
                await self.compute({user: watched})
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("portfolio load failed: %s", exc)
                raise ProtocolError(ErrorCode.UNAVAILABLE, "temporarily unavailable") from exc

    def snapshot(self, user: str) -> list[str]:
        watched = self.users.get(user)
        return [] if watched is None or watched.message is None else [watched.message]

    async def run(self) -> None:
        while self.running:
            await self.wake.wait()
            self.wake.clear()
            users, self.pending = self.pending, set()
            for user in [user for user in self.users if not self._follows(user)]:
                del self.users[user]  # nobody follows it any more
            due = {user: self.users[user] for user in sorted(users) if user in self.users}
            try:
                for user, message in (await self.compute(due)).items():
                    self.hub.publish(topic_of(PORTFOLIO, user), message)
            except (RedisError, OSError, asyncpg.PostgresError) as exc:
                log.warning("portfolio refresh failed: %s", exc)
                self._again(users)
                await asyncio.sleep(self.retry_seconds)
            await asyncio.sleep(self.period)

    def _again(self, users: Iterable[str]) -> None:
        self.pending |= set(users)
        self.wake.set()

    async def compute(self, users: dict[str, Watched]) -> dict[str, str]:
        """Recompute `users`; their new messages where they changed."""
        if not users or self.pool is None:
            return {}
        for user, watched in users.items():
            if watched.refill:
                await self.refill(user, watched)
        names = list(users)
        async with self.client.pipeline(transaction=False) as pipe:
            for user in names:
                pipe.hgetall(keys.balances(user))
            replies = await pipe.execute()
        changed = {}
        for user, raw in zip(names, replies, strict=True):
            watched = users[user]
            balances = parse_balances(raw)
            watched.priced_by = self._priced_by(watched.positions, balances)
            message = protocol.data(
                PORTFOLIO.name,
                {
                    "type": "portfolio",
                    **view(self.markets, watched.positions, balances, self.prices),
                },
            )
            if message != watched.message:
                watched.message = changed[user] = message
        return changed

    async def refill(self, user: str, watched: Watched) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            self.markets = await stored.markets(conn)
            watched.positions = await stored.positions(conn, user)
            for market, price in (await stored.last_prices(conn)).items():
                self.prices.setdefault(market, price)  # a trade seen here is newer
        behind = any(
            watched.positions.get(market, Position()).last_trade_id < trade_id
            for market, trade_id in watched.seen.items()
        )
        watched.refill = behind
        if behind:  # dbproc has not stored the newest fills yet: read again next period
            self._again([user])

    def _priced_by(self, positions: dict[str, Position], balances: Balances) -> set[str]:
        held = {asset for asset, (free, locked) in balances.items() if free or locked}
        return set(positions) | {
            name for name, market in self.markets.items() if market.base in held
        }
