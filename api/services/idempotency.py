"""`client_order_id` makes placing idempotent: the first request with an id claims it, and
every later one gets the first one's order. An OCO list's `client_list_id` works the same way,
in its own namespace (`LIST_CLAIMS`); its record's `order_id` is then the list id.

The claim is set by the enqueue itself (`enqueued`, ledger.gateway.Claim), in the same atomic
step as the lock: a placement is enqueued if and only if its id was free, and a refused one
(funds) claims nothing. The claim records the order id and, when the engine answers, the
answer itself.
"""

from typing import Any

import orjson

from ledger.gateway import Claim, ClaimTaken
from runtime.redis_pipe import PipelinedRedis
from xch.keys import PREFIX

ORDER_CLAIMS = "coid"
LIST_CLAIMS = "clid"


def claim_key(user: str, client_order_id: str, namespace: str = ORDER_CLAIMS) -> str:
    return f"{PREFIX}{namespace}:{user}:{client_order_id}"


class Claims:
    def __init__(
        self, client: PipelinedRedis, ttl_seconds: int, namespace: str = ORDER_CLAIMS
    ) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.namespace = namespace

    def enqueued(self, user: str, client_order_id: str, order_id: str) -> Claim:
        """The claim the enqueue of `order_id` sets: the id is ours if it was free."""
        key = claim_key(user, client_order_id, self.namespace)
        return Claim(key, orjson.dumps({"order_id": order_id}), self.ttl)

    @staticmethod
    def recorded(taken: ClaimTaken) -> dict[str, Any]:
        """What the first request with the id recorded."""
        recorded: dict[str, Any] = orjson.loads(taken.value)
        return recorded

    async def order_id(self, user: str, client_order_id: str) -> str | None:
        """The order id the client id names, if it is claimed."""
        claimed = await self.client.execute("GET", claim_key(user, client_order_id, self.namespace))
        return None if claimed is None else str(orjson.loads(claimed)["order_id"])

    async def record(
        self, user: str, client_order_id: str, order_id: str, status: int, body: dict[str, Any]
    ) -> None:
        key = claim_key(user, client_order_id, self.namespace)
        value = orjson.dumps({"order_id": order_id, "status": status, "body": body})
        await self.client.execute("SET", key, value, "XX", "KEEPTTL")
