"""The reference ledger: balances in minor units and the settlement of engine events.

This is the Python statement of the rules the Redis Lua scripts implement (tests hold the two
equal): `lock` is the api's check-and-lock before a command enters a market, `apply` is the
engine's batch commit. Every account has, per asset, a free and a locked balance; fees go to
`FEE_ACCOUNT`. Invariant: per asset, the sum of free + locked over all accounts equals
deposits minus withdrawals, and no balance is ever negative.
"""

from collections.abc import Iterable

from xch.market import MarketRules
from xch.schemas import (
    BUY,
    FEE_ACCOUNT,
    Event,
    Funds,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Trade,
)


class LedgerError(RuntimeError):
    """A settlement that would break the ledger's invariants: a bug, never an input error."""


class Ledger:
    def __init__(self, markets: Iterable[MarketRules] = ()) -> None:
        self.accounts: dict[str, dict[str, list[int]]] = {}
        self.net_deposits: dict[str, int] = {}
        self.markets: dict[str, MarketRules] = {rules.name: rules for rules in markets}

    def add_market(self, rules: MarketRules) -> None:
        self.markets[rules.name] = rules

    # ---- queries ------------------------------------------------------------------------

    def free(self, user: str, asset: str) -> int:
        return self._peek(user, asset)[0]

    def locked(self, user: str, asset: str) -> int:
        return self._peek(user, asset)[1]

    def _peek(self, user: str, asset: str) -> list[int]:
        return self.accounts.get(user, {}).get(asset, [0, 0])

    def totals(self) -> dict[str, int]:
        """Per asset, the sum of free + locked over every account."""
        sums: dict[str, int] = {}
        for assets in self.accounts.values():
            for asset, (free, locked) in assets.items():
                sums[asset] = sums.get(asset, 0) + free + locked
        return sums

    def snapshot(self) -> dict[str, dict[str, tuple[int, int]]]:
        """{user: {asset: (free, locked)}} sorted by user and asset, zero balances included."""
        return {
            user: {asset: (cell[0], cell[1]) for asset, cell in sorted(assets.items())}
            for user, assets in sorted(self.accounts.items())
        }

    # ---- the api's side: funds and locks ------------------------------------------------

    def _cell(self, user: str, asset: str) -> list[int]:
        assets = self.accounts.get(user)
        if assets is None:
            assets = self.accounts[user] = {}
        cell = assets.get(asset)
        if cell is None:
            cell = assets[asset] = [0, 0]
        return cell

    def deposit(self, user: str, asset: str, amount: int) -> None:
        if amount <= 0:
            raise ValueError("a deposit must be positive")
        self._cell(user, asset)[0] += amount
        self.net_deposits[asset] = self.net_deposits.get(asset, 0) + amount

    def withdraw(self, user: str, asset: str, amount: int) -> bool:
        """Take `amount` out of free funds; False (and no change) if free does not cover it."""
        if amount <= 0:
            raise ValueError("a withdrawal must be positive")
        cell = self._cell(user, asset)
        if cell[0] < amount:
            return False
        cell[0] -= amount
        self.net_deposits[asset] = self.net_deposits.get(asset, 0) - amount
        return True

    def lock(self, user: str, asset: str, amount: int) -> bool:
        """Move `amount` from free to locked; False (and no change) if free does not cover it."""
        try:
            cell = self.accounts[user][asset]
        except KeyError:
            cell = self._cell(user, asset)
        if amount < 0 or cell[0] < amount:
            return False
        cell[0] -= amount
        cell[1] += amount
        return True

    # ---- the engine's side: settlement --------------------------------------------------

    def apply(self, event: Event, locked_at_enqueue: bool = True) -> None:
        """Settle one event. With `locked_at_enqueue` False (rebuilding balances from the
        event stream alone) the lock an accepted or refused order took is applied first."""
        if isinstance(event, Trade):
            self._settle_trade(event)
        elif isinstance(event, OrderAccepted):
            if not locked_at_enqueue:
                self._relock(event, event.locked)
        elif isinstance(event, OrderDone):
            if event.unlocked:
                self._unlock(event.user, self._spent_asset(event), event.unlocked)
        elif isinstance(event, OrderRejected):
            if not locked_at_enqueue:
                self._relock(event, event.unlocked)
            self._unlock(event.user, self._spent_asset(event), event.unlocked)
        elif isinstance(event, Funds):
            if event.amount > 0:
                self.deposit(event.user, event.asset, event.amount)
            elif not self.withdraw(event.user, event.asset, -event.amount):
                raise LedgerError(f"withdrawal beyond free funds: {event!r}")

    def apply_all(self, events: Iterable[Event], locked_at_enqueue: bool = True) -> None:
        for event in events:
            self.apply(event, locked_at_enqueue)

    def _relock(self, event: OrderAccepted | OrderRejected, amount: int) -> None:
        if amount and not self.lock(event.user, self._spent_asset(event), amount):
            raise LedgerError(f"lock beyond free funds: {event!r}")

    def _spent_asset(self, event: OrderAccepted | OrderRejected | OrderDone) -> str:
        rules = self.markets[event.market]
        return rules.quote if event.side == BUY else rules.base

    def _unlock(self, user: str, asset: str, amount: int) -> None:
        if not amount:
            return
        cell = self._cell(user, asset)
        if cell[1] < amount:
            raise LedgerError(f"unlock of {amount} {asset} beyond {user}'s locked {cell[1]}")
        cell[1] -= amount
        cell[0] += amount

    def _settle_trade(self, trade: Trade) -> None:
        rules = self.markets[trade.market]
        base_asset, quote_asset = rules.base, rules.quote
        base = trade.qty * rules.base_per_lot
        quote = trade.quote_qty
        if trade.taker_side == BUY:
            buyer, buyer_fee, buyer_refund = trade.taker_user, trade.taker_fee, trade.taker_unlocked
            seller, seller_fee = trade.maker_user, trade.maker_fee
        else:
            buyer, buyer_fee, buyer_refund = trade.maker_user, trade.maker_fee, 0
            seller, seller_fee = trade.taker_user, trade.taker_fee
        accounts = self.accounts
        try:
            buyer_account, seller_account = accounts[buyer], accounts[seller]
            buyer_quote, buyer_base = buyer_account[quote_asset], buyer_account[base_asset]
            seller_base, seller_quote = seller_account[base_asset], seller_account[quote_asset]
            fees = accounts[FEE_ACCOUNT]
            fees_base, fees_quote = fees[base_asset], fees[quote_asset]
        except KeyError:
            buyer_quote, buyer_base = self._cell(buyer, quote_asset), self._cell(buyer, base_asset)
            seller_base = self._cell(seller, base_asset)
            seller_quote = self._cell(seller, quote_asset)
            fees_base = self._cell(FEE_ACCOUNT, base_asset)
            fees_quote = self._cell(FEE_ACCOUNT, quote_asset)
        if buyer_quote[1] < quote + buyer_refund or seller_base[1] < base:
            raise LedgerError(f"trade beyond locked funds: {trade!r}")
        buyer_quote[1] -= quote + buyer_refund
        buyer_quote[0] += buyer_refund
        buyer_base[0] += base - buyer_fee
        seller_base[1] -= base
        seller_quote[0] += quote - seller_fee
        fees_base[0] += buyer_fee
        fees_quote[0] += seller_fee
