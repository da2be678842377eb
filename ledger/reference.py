"""The reference ledger: balances in minor units and the settlement of engine events.

This is the Python statement of the rules the Redis Lua scripts implement (tests hold the two
equal): `lock` is the api's check-and-lock before a command enters a market, `apply` is the
engine's batch commit. Every account has, per asset, a free and a locked balance; fees go to
`FEE_ACCOUNT`. Invariant: per asset, the sum of free + locked over all accounts equals
deposits minus withdrawals, and no balance is ever negative.
"""

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ledger.natives import AS_TUPLE, FUNDS, ORDER_DONE, ORDER_REJECTED, TRADE
from xch.market import MarketRules
from xch.schemas import (
    BUY,
    FEE_ACCOUNT,
    Event,
    Funds,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Side,
    Trade,
)


class Cell:
    """One account's balance of one asset, in minor units. A native class when compiled: its
    two fields are read and changed in place as machine words, where list cells were generic
    objects; it unpacks as the pair `(free, locked)`."""

    __slots__ = ("free", "locked")

    def __init__(self, free: int = 0, locked: int = 0) -> None:
        self.free = free
        self.locked = locked

    def __iter__(self) -> Iterator[int]:
        return iter((self.free, self.locked))

    def __repr__(self) -> str:
        return f"Cell(free={self.free}, locked={self.locked})"


TradeFields = tuple[str, int, str, int, int, int, int, int, str, str, str, str, Side, int, int, int]
"""The types of `Trade`'s fields in their order, as `_settle_trade` reads them (a test holds
the two equal)."""


class LedgerError(Exception):
    """A settlement that would break the ledger's invariants: a bug, never an input error."""


class Ledger:
    """Balances per account and asset (`accounts[user][asset]`, a `Cell`) in minor units.

    A non-strict ledger starts from nothing and accepts negative results: settling a batch's
    events into one gives the batch's net balance moves, which the engine's Redis commit
    applies (and checks) atomically.
    """

    def __init__(self, markets: Iterable[MarketRules] = (), strict: bool = True) -> None:
        self.strict = strict
        self.accounts: dict[str, dict[str, Cell]] = {}
        self.net_deposits: dict[str, int] = {}
        self.markets: dict[str, MarketRules] = {}
        self._assets: dict[str, tuple[str, str, int]] = {}
        """Market -> (base, quote, base minor units per lot): all settling reads of its rules,
        in one lookup (compiled, each read of a rules field is a generic getattr)."""
        self._fee_cells: dict[str, tuple[Cell, Cell]] = {}
        """Market -> `FEE_ACCOUNT`'s (base, quote) balances, from the market's first trade on
        (created then, not before: a zero balance is part of the snapshot)."""
        for rules in markets:
            self.add_market(rules)

    def add_market(self, rules: MarketRules) -> None:
        self.markets[rules.name] = rules
        self._assets[rules.name] = (rules.base, rules.quote, rules.base_per_lot)

    # ---- queries ------------------------------------------------------------------------

    def free(self, user: str, asset: str) -> int:
        cell = self._peek(user, asset)
        return 0 if cell is None else cell.free

    def locked(self, user: str, asset: str) -> int:
        cell = self._peek(user, asset)
        return 0 if cell is None else cell.locked

    def _peek(self, user: str, asset: str) -> Cell | None:
        """The balance, if the account has one of the asset (a query creates none)."""
        assets = self.accounts.get(user)
        return None if assets is None else assets.get(asset)

    def totals(self) -> dict[str, int]:
        """Per asset, the sum of free + locked over every account."""
        sums: dict[str, int] = {}
        for assets in self.accounts.values():
            for asset, cell in assets.items():
                sums[asset] = sums.get(asset, 0) + cell.free + cell.locked
        return sums

    def snapshot(self) -> dict[str, dict[str, tuple[int, int]]]:
        """{user: {asset: (free, locked)}} sorted by user and asset, zero balances included."""
        return {
            user: {asset: (cell.free, cell.locked) for asset, cell in sorted(assets.items())}
            for user, assets in sorted(self.accounts.items())
        }

    # ---- the api's side: funds and locks ------------------------------------------------

    def _cell(self, user: str, asset: str) -> Cell:
        """The balance, a zero one created first if the account has none of the asset."""
        return _cell_in(self._account(user), asset)

    def _account(self, user: str) -> dict[str, Cell]:
        """The account's balances by asset, an empty account created first if it has none."""
        assets = self.accounts.get(user)
        if assets is None:
            assets = self.accounts[user] = {}
        return assets

    def restore(self, user: str, asset: str, free: int, locked: int) -> None:
        """Set one balance (loading a snapshot)."""
        cell = self._cell(user, asset)
        cell.free, cell.locked = free, locked

    def deposit(self, user: str, asset: str, amount: int) -> None:
        if amount <= 0:
            raise ValueError("a deposit must be positive")
        self._cell(user, asset).free += amount
        self.net_deposits[asset] = self.net_deposits.get(asset, 0) + amount

    def withdraw(self, user: str, asset: str, amount: int) -> bool:
        """Take `amount` out of free funds; False (and no change) if free does not cover it."""
        if amount <= 0:
            raise ValueError("a withdrawal must be positive")
        cell = self._cell(user, asset)
        if cell.free < amount:
            return False
        cell.free -= amount
        self.net_deposits[asset] = self.net_deposits.get(asset, 0) - amount
        return True

    def lock(self, user: str, asset: str, amount: int) -> bool:
        """Move `amount` from free to locked; False (and no change) if free does not cover it."""
        assets = self.accounts.get(user)
        cell = None if assets is None else assets.get(asset)
        if cell is None:
            return amount == 0  # nothing to move: leave no trace of an unknown account
        if amount < 0 or cell.free < amount:
            return False
        cell.free -= amount
        cell.locked += amount
        return True

    # ---- the engine's side: settlement --------------------------------------------------

    def apply(self, event: Event, locked_at_enqueue: bool = True) -> None:
        """Settle one event. With `locked_at_enqueue` False (rebuilding balances from the
        event stream alone) the lock an accepted or refused order took is applied first."""
        if not locked_at_enqueue and isinstance(event, OrderAccepted | OrderRejected):
            self._relock(
                event, event.locked if isinstance(event, OrderAccepted) else event.unlocked
            )
        self._settle(event)

    def apply_all(self, events: Iterable[Event], locked_at_enqueue: bool = True) -> None:
        for event in events:
            self.apply(event, locked_at_enqueue)

    def settle_from(self, events: list[Event], start: int) -> None:
        """Settle `events[start:]` as the engine's commit does (locks taken at enqueue)."""
        for n in range(start, len(events)):
            self._settle(events[n])

    def _settle(self, event: Event) -> None:
        """Move the balances `event` moves; accepted orders were locked at enqueue. Exact type
        checks, most frequent first: an isinstance that misses costs a metaclass call."""
        if type(event) is TRADE:
            self._settle_trade(event)
        elif type(event) is ORDER_DONE or type(event) is ORDER_REJECTED:
            self._settle_release(event)
        elif type(event) is FUNDS:
            self._settle_funds(event)

    def _settle_release(self, event: OrderDone | OrderRejected) -> None:
        unlocked = event.unlocked
        if unlocked:
            self._unlock(event.user, self._spent_asset(event), unlocked)

    def _settle_funds(self, event: Funds) -> None:
        if event.amount > 0:
            self.deposit(event.user, event.asset, event.amount)
        elif not self.withdraw(event.user, event.asset, -event.amount):
            raise LedgerError(f"withdrawal beyond free funds: {event!r}")

    def _relock(self, event: OrderAccepted | OrderRejected, amount: int) -> None:
        if amount and not self.lock(event.user, self._spent_asset(event), amount):
            raise LedgerError(f"lock beyond free funds: {event!r}")

    def _spent_asset(self, event: OrderAccepted | OrderRejected | OrderDone) -> str:
        base, quote, _ = self._assets[event.market]
        return quote if event.side == BUY else base

    def _unlock(self, user: str, asset: str, amount: int) -> None:
        if not amount:
            return
        cell = self._cell(user, asset)
        if cell.locked < amount and self.strict:
            raise LedgerError(f"unlock of {amount} {asset} beyond {user}'s locked {cell.locked}")
        cell.locked -= amount
        cell.free += amount

    def _settle_trade(self, trade: Trade) -> None:
        # Every field in one C call, read by position (`TradeFields`): compiled, each named
        # read of a struct field is a generic getattr, and a trade needs nine.
        fields: TradeFields = AS_TUPLE(trade)
        market, qty, quote, maker_user, taker_user = (
            fields[0],
            fields[6],
            fields[7],
            fields[9],
            fields[11],
        )
        taker_side, maker_fee, taker_fee, taker_unlocked = (
            fields[12],
            fields[13],
            fields[14],
            fields[15],
        )
        base_asset, quote_asset, base_per_lot = self._assets[market]
        base = qty * base_per_lot
        if taker_side == BUY:
            buyer, buyer_fee, buyer_refund = taker_user, taker_fee, taker_unlocked
            seller, seller_fee = maker_user, maker_fee
        else:
            buyer, buyer_fee, buyer_refund = maker_user, maker_fee, 0
            seller, seller_fee = taker_user, taker_fee
        # Each account looked up once; cells created in the same order as one by one.
        buyer_assets = self._account(buyer)
        buyer_quote = _cell_in(buyer_assets, quote_asset)
        buyer_base = _cell_in(buyer_assets, base_asset)
        seller_assets = self._account(seller)
        seller_base = _cell_in(seller_assets, base_asset)
        seller_quote = _cell_in(seller_assets, quote_asset)
        fees = self._fee_cells.get(market)
        if fees is None:
            fees = self._fee_cells[market] = (
                self._cell(FEE_ACCOUNT, base_asset),
                self._cell(FEE_ACCOUNT, quote_asset),
            )
        fees_base, fees_quote = fees
        if self.strict and (buyer_quote.locked < quote + buyer_refund or seller_base.locked < base):
            raise LedgerError(f"trade beyond locked funds: {trade!r}")
        buyer_quote.locked -= quote + buyer_refund
        buyer_quote.free += buyer_refund
        buyer_base.free += base - buyer_fee
        seller_base.locked -= base
        seller_quote.free += quote - seller_fee
        fees_base.free += buyer_fee
        fees_quote.free += seller_fee


def _cell_in(assets: dict[str, Cell], asset: str) -> Cell:
    """An account's balance of `asset`, a zero one created first if it has none."""
    cell = assets.get(asset)
    if cell is None:
        cell = assets[asset] = Cell()
    return cell


EXTERNAL_ACCOUNT = "@external"
"""The other side of deposits and withdrawals in a double-entry journal of balance moves."""


class Move(NamedTuple):
    """One account's change in one asset, in minor units: free and locked deltas."""

    user: str
    asset: str
    free: int
    locked: int


def balance_moves(event: Event, rules: MarketRules | None) -> list[Move]:
    """The balance moves one event makes, as double entries: per asset they sum to zero
    (deposits and withdrawals balance against EXTERNAL_ACCOUNT). The lock an accepted order
    took at enqueue is its own move; a refused place's lock and unlock cancel out, so it has
    none. `rules` (the event's market) is needed for everything but `Funds`."""
    if isinstance(event, Funds):
        return [
            Move(event.user, event.asset, event.amount, 0),
            Move(EXTERNAL_ACCOUNT, event.asset, -event.amount, 0),
        ]
    if rules is None:
        raise ValueError(f"{type(event).__name__} needs its market's rules")
    if isinstance(event, OrderAccepted) and event.locked:
        asset = rules.quote if event.side == BUY else rules.base
        return [Move(event.user, asset, -event.locked, event.locked)]
    if isinstance(event, OrderDone) and event.unlocked:
        asset = rules.quote if event.side == BUY else rules.base
        return [Move(event.user, asset, event.unlocked, -event.unlocked)]
    if isinstance(event, Trade):
        return _trade_moves(event, rules)
    return []


def _trade_moves(trade: Trade, rules: MarketRules) -> list[Move]:
    base, quote = trade.qty * rules.base_per_lot, trade.quote_qty
    if trade.taker_side == BUY:
        buyer, buyer_fee, refund = trade.taker_user, trade.taker_fee, trade.taker_unlocked
        seller, seller_fee = trade.maker_user, trade.maker_fee
    else:
        buyer, buyer_fee, refund = trade.maker_user, trade.maker_fee, 0
        seller, seller_fee = trade.taker_user, trade.taker_fee
    cells: dict[tuple[str, str], list[int]] = {}
    for user, asset, free, locked in (
        (buyer, rules.quote, refund, -(quote + refund)),
        (buyer, rules.base, base - buyer_fee, 0),
        (seller, rules.base, 0, -base),
        (seller, rules.quote, quote - seller_fee, 0),
        (FEE_ACCOUNT, rules.base, buyer_fee, 0),
        (FEE_ACCOUNT, rules.quote, seller_fee, 0),
    ):
        cell = cells.setdefault((user, asset), [0, 0])
        cell[0] += free
        cell[1] += locked
    return [
        Move(user, asset, free, locked)
        for (user, asset), (free, locked) in cells.items()
        if free or locked
    ]
