"""Redis key names (docs/architecture.md). Every component builds keys through these."""

PREFIX = "xch:"
MARKETS = f"{PREFIX}markets"


def market_input(market: str) -> str:
    """Stream of commands for `market`, written by the api's lock-and-enqueue script."""
    return f"{PREFIX}{market}:in"


def market_events(market: str) -> str:
    """Stream of everything the engine of `market` decided, in seq order."""
    return f"{PREFIX}{market}:events"


def market_applied(market: str) -> str:
    """Id of the last input entry the engine applied and committed."""
    return f"{PREFIX}{market}:applied"


def market_lease(market: str) -> str:
    """The single-writer lease of the engine of `market` (value: fencing token)."""
    return f"{PREFIX}{market}:lease"


def market_lease_holder(market: str) -> str:
    """Who holds the lease of `market`: the engine's Pod name (or host name), written with
    the lease by its script, with the same TTL, and deleted when the lease is released."""
    return f"{PREFIX}{market}:holder"


def market_trading(market: str) -> str:
    """The trading state (xch.market.Trading) of the engine holding the lease of `market`, as
    of its last commit: written at its lease renewals, with the lease's TTL, deleted with it."""
    return f"{PREFIX}{market}:trading"


def market_snapshot(market: str) -> str:
    return f"{PREFIX}{market}:snapshot"


def market_depth(market: str) -> str:
    return f"{PREFIX}{market}:depth"


def balances(user: str) -> str:
    """Hash of `{asset}:free` and `{asset}:locked`, integers in minor units."""
    return f"{PREFIX}bal:{user}"


def free_field(asset: str) -> str:
    return f"{asset}:free"


def locked_field(asset: str) -> str:
    return f"{asset}:locked"


def reply_channel(api_instance: str) -> str:
    """Pub/sub channel on which engines publish immediate results for one api instance."""
    return f"{PREFIX}reply:{api_instance}"


def market_fence(market: str) -> str:
    """Counter behind the engine lease's fencing tokens: INCR gives every holder a larger one."""
    return f"{PREFIX}{market}:fence"


def market_batches(market: str) -> str:
    """List of committed batches since the snapshot ("<last input id> <seq>"): recovery replays
    the input with exactly these batch boundaries, so it re-derives the same event seqs."""
    return f"{PREFIX}{market}:batches"


SUPPLY = f"{PREFIX}supply"
"""Hash asset -> deposits minus withdrawals, in minor units: what all balances must add up to."""


DBPROC_GROUP = "dbproc"
"""Consumer group of the database processors on every `xch:{M}:events` stream."""


def market_ticker(market: str) -> str:
    """Rolling 24-hour statistics of `market` (JSON, `xch.marketdata.Ticker`), kept by dbproc."""
    return f"{PREFIX}{market}:ticker"


def listen_key(key: str) -> str:
    """A WebSocket listen key (string, value: user id, with a TTL), issued by the api."""
    return f"{PREFIX}listen:{key}"


FUNDS = f"{PREFIX}funds"
"""Stream of every deposit and withdrawal (`xch.wire.FundsEntry`, fields `xch.wire.FUNDS_*`),
written by the funds script, read by dbproc and ws."""

FUNDS_SEQ = f"{PREFIX}funds:seq"
"""Counter behind the funds stream's sequence numbers: increasing, drawn with a clock floor
so that a restored Redis never repeats one (ledger.numbers)."""


def funds_claim(kind: str, reference: str) -> str:
    """An admin deposit's or withdrawal's reference, once a movement used it (string
    `user|asset|amount|free`, with a TTL): the funds script's idempotency key."""
    return f"{PREFIX}funds-ref:{kind}:{reference}"


def market_order_seq(market: str) -> str:
    """Counter behind the order ids the Binance-compatible routes give out in `market` (drawn
    with a clock floor: ledger.numbers)."""
    return f"{PREFIX}{market}:order_seq"


LIST_SEQ = f"{PREFIX}list_seq"
"""Counter behind the OCO list ids the Binance-compatible routes give out (`{M}.{n:016x}`, so
Binance's `orderListId` is n): one for all markets, since Binance looks a list up by its id
alone."""


def order_list(user: str, number: int) -> str:
    """An OCO list placed through the Binance-compatible routes (`orderListId` number): its
    JSON record (market, list id, listClientOrderId, leg order and client ids, time), with a
    TTL; PostgreSQL has the list once dbproc stored its legs. Written and read by the api."""
    return f"{PREFIX}list:{user}:{number}"


def order_list_client(user: str, client_list_id: str) -> str:
    """The `orderListId` a user's listClientOrderId names, with the record's TTL."""
    return f"{PREFIX}list-cid:{user}:{client_list_id}"


def recent_order_lists(user: str) -> str:
    """Sorted set of the user's newest Binance OCO list numbers (score: placing time, ms), at
    most api.binance.lists.RECENT_LISTS of them, with the records' TTL."""
    return f"{PREFIX}lists-recent:{user}"
