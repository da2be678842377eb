"""The standard engine workload, seeded and built with the standard library's random only.

200,000 GTC limit orders plus cancels, so that about 20% of operations are cancels (about
250,000 operations); prices uniform in mid 10,000 +/- 50 ticks; sizes uniform 1-100 lots;
sides 50/50; 1,000 users; each cancel targets one of the 1,000 most recently issued order ids
not yet targeted.
"""

import random
from dataclasses import dataclass

from xch.schemas import BUY, DEFAULT_STP, GTC, LIMIT, SELL, Cancel, Place, Side

MID_TICKS = 10_000
SPREAD_TICKS = 50
MAX_LOTS = 100
USERS = 1_000
RECENT_WINDOW = 1_000
CANCEL_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Workload:
    commands: list[Place | Cancel]
    users: list[str]

    @property
    def places(self) -> int:
        return sum(1 for command in self.commands if isinstance(command, Place))


def standard_workload(orders: int = 200_000, seed: int = 42) -> Workload:
    rng = random.Random(seed)
    users = [f"u{n}" for n in range(USERS)]
    commands: list[Place | Cancel] = []
    recent: list[tuple[str, str]] = []
    placed = 0
    while placed < orders:
        if recent and rng.random() < CANCEL_SHARE:
            order_id, user = recent.pop(rng.randrange(len(recent)))
            commands.append(Cancel(order_id=order_id, user=user))
            continue
        placed += 1
        order_id = f"o{placed}"
        user = users[rng.randrange(USERS)]
        side: Side = BUY if rng.random() < 0.5 else SELL
        price = MID_TICKS + rng.randint(-SPREAD_TICKS, SPREAD_TICKS)
        lots = rng.randint(1, MAX_LOTS)
        commands.append(Place(order_id, user, side, LIMIT, price, lots, 0, GTC, DEFAULT_STP, 0))
        recent.append((order_id, user))
        if len(recent) > RECENT_WINDOW:
            recent.pop(0)
    return Workload(commands, users)
