"""The market maker's loop: observe, decide (mm.strategy), act through the api.

Each round reads the market's new trades, the maker's balances, open orders and fills, and
the book; builds the ladder and applies the difference to the live quotes: first the new
quotes its free balances cover (so requoting leaves no gap in the book), then the cancels
(they free funds), then the other new quotes. All are post-only, none at or through the
best price of other traders on the opposite side (the engine would refuse such a post-only
order) nor crossing the maker's own (its default self-trade prevention, EXPIRE_MAKER, is
never needed). Failures back off and are retried; on shutdown every order it placed is
canceled, whether or not the api's order list shows it yet.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from mm.book import BookShape, book_shape
from mm.client import ApiClient, ApiError
from mm.strategy import (
    Estimator,
    Holdings,
    LiveOrder,
    Params,
    Quote,
    ladder,
    others_touch,
    place_before_cancel,
    requote,
)
from runtime.pause import pause
from xch.market import Market, MarketRules
from xch.money import format_units, to_minor
from xch.schemas import BUY, SELL

log = logging.getLogger("mm")
LIVE = ("new", "partially_filled", "pending")
STORE_GRACE_SECONDS = 5.0
"""How long an order placed may be missing from the api's open orders (stored by dbproc)
before the maker takes it for ended."""
BOOK_DEPTH = 50
"""Book levels read: to find the best price of others beyond the maker's own quotes, and
to measure the depth within 1% of the mid."""


class MakerMetrics:
    """Prometheus gauges are floats: these are for dashboards, never for accounting."""

    def __init__(self, market: str) -> None:
        self.registry = CollectorRegistry()
        self.quotes = Gauge("mm_quotes_live", "Live quotes", ["side"], registry=self.registry)
        self.inventory = Gauge(
            "mm_inventory", "Holdings in whole units", ["asset"], registry=self.registry
        )
        self.pnl = Gauge(
            "mm_pnl_quote",
            "Mark-to-market gain since start, in quote units",
            registry=self.registry,
        )
        self.fair = Gauge("mm_fair_price", "The fair price estimate", registry=self.registry)
        self.spread = Gauge(
            "mm_spread_bps", "The book's best ask over best bid, in bps", registry=self.registry
        )
        self.depth = Gauge(
            "mm_depth_base",
            "Base resting in the book within `within_bps` of the mid",
            ["side", "within_bps"],
            registry=self.registry,
        )
        self.placed = Counter("mm_orders_placed", "Orders placed", registry=self.registry)
        self.canceled = Counter("mm_orders_canceled", "Orders canceled", registry=self.registry)
        self.placed_base = Counter(
            "mm_placed_base", "Base quoted in the orders placed", registry=self.registry
        )
        self.filled_base = Counter(
            "mm_filled_base", "Base filled on the maker's quotes", registry=self.registry
        )
        self.fills = Counter("mm_fills", "Fills of the maker's quotes", registry=self.registry)
        self.fill_ratio = Gauge(
            "mm_fill_ratio", "Base filled over base placed, since start", registry=self.registry
        )
        self.errors = Counter("mm_errors", "Failed rounds and requests", registry=self.registry)
        self.market = market

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Maker:
    market: Market
    client: ApiClient
    metrics: MakerMetrics
    requote_bps: int | None = None
    params: Params = field(init=False)
    rules: MarketRules = field(init=False)
    estimator: Estimator | None = None
    last_trade_id: int = 0
    placed: dict[str, tuple[LiveOrder, float]] = field(default_factory=dict)
    """Orders this maker placed and may still be open, with when it placed them."""
    start_value: int | None = None
    last_fill_id: int | None = None
    """The newest of its own fills seen (None: not read yet; older ones are not counted)."""
    placed_lots: int = 0
    filled_lots: int = 0
    ready: bool = False

    def __post_init__(self) -> None:
        self.params = Params.of(self.market)
        self.rules = self.market.rules()

    @property
    def threshold_bps(self) -> int:
        return self.requote_bps or max(1, self.params.spacing_bps // 2)

    # ---- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        delay = interval
        try:
            while not stop.is_set():
                try:
                    await self.round()
                    self.ready = True
                    delay = interval
                except (ApiError, httpx.HTTPError) as error:
                    self.metrics.errors.inc()
                    retry_after = error.retry_after if isinstance(error, ApiError) else 0
                    delay = max(min(delay * 2, 30.0), retry_after)
                    log.warning("mm %s: round failed (%s)", self.rules.name, error)
                await pause(stop, delay)
        finally:
            await self.cancel_everything()

    async def round(self) -> None:
        await self._observe_trades()
        assert self.estimator is not None
        holdings, free = await self._holdings()
        live = await self._live_orders()
        bids, asks = await self._book()
        touch = others_touch(bids, asks, live)
        desired = ladder(self.params, self.estimator, holdings, touch)
        plan = requote(live, desired, self.threshold_bps)
        first = place_before_cancel(plan, live, holdings, free, self.params)
        for quote in first:
            await self._place(quote)
        for order_id in plan.cancel:
            await self._cancel(order_id)
        for quote in plan.place:
            if quote not in first:
                await self._place(quote)
        await self._observe_fills()
        self._report(holdings, desired, book_shape(bids, asks))

    # ---- observing ----------------------------------------------------------------------

    async def _observe_trades(self) -> None:
        trades = await self.client.trades(self.rules.name, limit=200)
        fresh = sorted(
            (t for t in trades if int(t["trade_id"]) > self.last_trade_id),
            key=lambda t: int(t["trade_id"]),
        )
        if self.estimator is None:
            start = self.params.reference_ticks
            if fresh:
                start = self.rules.price_to_ticks(fresh[-1]["price"])
            if start is None:
                raise ApiError(0, "no_price", "no trades and no referencePrice to start from")
            self.estimator = Estimator.starting_at(start)
        if fresh:
            self.estimator.observe(
                (self.rules.price_to_ticks(t["price"]), self.rules.qty_to_lots(t["quantity"]))
                for t in fresh
            )
            self.last_trade_id = int(fresh[-1]["trade_id"])

    async def _holdings(self) -> tuple[Holdings, Holdings]:
        """What the maker holds in all (free + locked), and free."""
        balances = await self.client.balances()

        def amounts(asset: str, scale: int) -> tuple[int, int]:
            free, locked = balances.get(asset, ("0", "0"))
            return to_minor(free, scale) + to_minor(locked, scale), to_minor(free, scale)

        base, free_base = amounts(self.rules.base, self.rules.base_scale)
        quote, free_quote = amounts(self.rules.quote, self.rules.quote_scale)
        return Holdings(base, quote), Holdings(free_base, free_quote)

    async def _live_orders(self) -> list[LiveOrder]:
        """The api's open orders (stored by dbproc, a moment behind), plus the orders placed
        so recently that they may not be stored yet."""
        listed = {o["order_id"]: o for o in await self.client.open_orders(self.rules.name)}
        now = time.monotonic()
        self.placed = {
            order_id: (order, at)
            for order_id, (order, at) in self.placed.items()
            if order_id in listed or now - at < STORE_GRACE_SECONDS
        }
        live = {order_id: self._live(o) for order_id, o in listed.items()}
        for order_id, (order, _) in self.placed.items():
            live.setdefault(order_id, order)
        return list(live.values())

    async def _book(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The book's bids and asks near the top, (price ticks, lots) best first."""
        book = await self.client.depth(self.rules.name, limit=BOOK_DEPTH)

        def levels(side: str) -> list[tuple[int, int]]:
            return [
                (self.rules.price_to_ticks(price), self.rules.qty_to_lots(qty))
                for price, qty in book[side]
            ]

        return levels("bids"), levels("asks")

    async def _observe_fills(self) -> None:
        fills = await self.client.fills(self.rules.name)
        newest = max((int(f["trade_id"]) for f in fills), default=0)
        if self.last_fill_id is not None:
            fresh = [f for f in fills if int(f["trade_id"]) > self.last_fill_id]
            lots = sum(self.rules.qty_to_lots(f["quantity"]) for f in fresh)
            self.filled_lots += lots
            self.metrics.fills.inc(len(fresh))
            self.metrics.filled_base.inc(float(lots * self.rules.lot))
        self.last_fill_id = max(newest, self.last_fill_id or 0)

    def _live(self, order: dict[str, Any]) -> LiveOrder:
        lots = self.rules.qty_to_lots(order["quantity"]) - self.rules.qty_to_lots(
            order.get("filled_quantity") or "0"
        )
        return LiveOrder(
            order["order_id"], order["side"], self.rules.price_to_ticks(order["price"]), lots
        )

    # ---- acting -------------------------------------------------------------------------

    async def _place(self, quote: Quote) -> None:
        order = {
            "market": self.rules.name,
            "side": quote.side,
            "type": "limit",
            "tif": "POST_ONLY",
            "price": format_units(quote.price, self.rules.tick),
            "quantity": format_units(quote.lots, self.rules.lot),
        }
        try:
            placed = await self.client.place(order)
        except ApiError as error:
            if error.status >= 500 or error.status == 429:
                raise
            log.info("mm %s: %s quote refused: %s", self.rules.name, quote.side, error.code)
            return
        self.metrics.placed.inc()
        self.metrics.placed_base.inc(float(quote.lots * self.rules.lot))
        self.placed_lots += quote.lots
        if placed.get("status") in LIVE:
            live = LiveOrder(placed["order_id"], quote.side, quote.price, quote.lots)
            self.placed[live.order_id] = (live, time.monotonic())

    async def _cancel(self, order_id: str) -> None:
        try:
            await self.client.cancel(order_id)
            self.metrics.canceled.inc()
        except ApiError as error:
            if error.status >= 500 or error.status == 429:
                raise
        self.placed.pop(order_id, None)

    async def cancel_everything(self) -> None:
        """Cancel every order this maker has open, listed or only known to it."""
        ids = set(self.placed)
        try:
            ids |= {o["order_id"] for o in await self.client.open_orders(self.rules.name)}
        except (ApiError, httpx.HTTPError):
            log.warning("mm %s: cannot list open orders at shutdown", self.rules.name)
        for order_id in sorted(ids):
            try:
                await self._cancel(order_id)
            except (ApiError, httpx.HTTPError):
                log.warning("mm %s: cancel of %s failed at shutdown", self.rules.name, order_id)
        self.metrics.quotes.labels(BUY).set(0)
        self.metrics.quotes.labels(SELL).set(0)

    # ---- reporting ----------------------------------------------------------------------

    def _report(self, holdings: Holdings, desired: list[Quote], shape: BookShape) -> None:
        assert self.estimator is not None
        fair = self.estimator.fair_ticks
        value = (
            holdings.quote
            + holdings.base * fair * self.rules.quote_per_tick_lot // self.rules.base_per_lot
        )
        if self.start_value is None:
            self.start_value = value
        m = self.metrics
        m.quotes.labels(BUY).set(sum(1 for q in desired if q.side == BUY))
        m.quotes.labels(SELL).set(sum(1 for q in desired if q.side == SELL))
        m.inventory.labels(self.rules.base).set(holdings.base / 10**self.rules.base_scale)
        m.inventory.labels(self.rules.quote).set(holdings.quote / 10**self.rules.quote_scale)
        m.pnl.set((value - self.start_value) / 10**self.rules.quote_scale)
        m.fair.set(float(format_units(fair, self.rules.tick)))
        m.spread.set(shape.spread_bps if shape.spread_bps is not None else math.nan)
        for side, depth in ((BUY, shape.bid_lots), (SELL, shape.ask_lots)):
            for band, lots in depth.items():
                m.depth.labels(side, str(band)).set(float(lots * self.rules.lot))
        if self.placed_lots:
            m.fill_ratio.set(self.filled_lots / self.placed_lots)
