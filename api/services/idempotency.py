"""`client_order_id` makes placing idempotent: the first request with an id claims it (SET NX,
before anything is enqueued), and every later one gets the first one's order. An OCO list's
`client_list_id` works the same way, in its own namespace (`LIST_CLAIMS`); its record's
`order_id` is then the list id.

The claim is released only when nothing was enqueued (a refusal before the engine); once
enqueued, the claim records the order id and, when the engine answers, the answer itself.
"""

from typing import Any, cast

import orjson
import redis.asyncio

from xch.keys import PREFIX

ORDER_CLAIMS = "coid"
LIST_CLAIMS = "clid"


def claim_key(user: str, client_order_id: str, namespace: str = ORDER_CLAIMS) -> str:
    return f"{PREFIX}{namespace}:{user}:{client_order_id}"


class Claims:
    def __init__(
        self, client: redis.asyncio.Redis, ttl_seconds: int, namespace: str = ORDER_CLAIMS
    ) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.namespace = namespace

    async def claim(self, user: str, client_order_id: str, order_id: str) -> dict[str, Any] | None:
        """None if the id was free (it is now ours), else what the first request recorded."""
        key = claim_key(user, client_order_id, self.namespace)
        record = orjson.dumps({"order_id": order_id})
        # SET NX GET: one atomic step that either claims or returns the earlier claim.
        previous = await self.client.set(key, record, nx=True, ex=self.ttl, get=True)
        if previous is None:
            return None
        recorded: dict[str, Any] = orjson.loads(cast(bytes, previous))
        return recorded

    async def order_id(self, user: str, client_order_id: str) -> str | None:
        """The order id the client id names, if it is claimed."""
        claimed = await self.client.get(claim_key(user, client_order_id, self.namespace))
        return None if claimed is None else str(orjson.loads(claimed)["order_id"])

    async def record(
        self, user: str, client_order_id: str, order_id: str, status: int, body: dict[str, Any]
    ) -> None:
        key = claim_key(user, client_order_id, self.namespace)
        value = orjson.dumps({"order_id": order_id, "status": status, "body": body})
        await self.client.set(key, value, xx=True, keepttl=True)

    async def release(self, user: str, client_order_id: str) -> None:
        await self.client.delete(claim_key(user, client_order_id, self.namespace))
