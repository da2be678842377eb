"""The one way a command reaches a market's engine: claim the client id (idempotency), lock
the funds and enqueue, all three in the gateway's one atomic step, map a refusal or a lost
connection, wait for the engine's reply on this instance's channel, and record the answer
for a repeated request.

A place or cancel waits up to the reply timeout; after that it answers 202 with status
`pending`: the command is in the market's input and will be applied, it is only not
answered yet. What differs between an order and an OCO list is a `Placement`.
"""

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

import redis.exceptions
from pydantic import BaseModel

from api.errors import ApiError, from_result_code
from api.metrics import ENGINE_REPLY, ORDERS
from api.replies import Op
from api.services.idempotency import Claims
from api.state import AppState
from ledger.gateway import ClaimTaken, FundsError
from xch.schemas import Cancel, Event, Place, PlaceList, ResultCode

Out = TypeVar("Out", bound=BaseModel)


class Placement(ABC, Generic[Out]):
    """One order or OCO list, planned, on its way to the engine."""

    noun: ClassVar[str]
    """What it is called in a lost connection's message ("order", "order list")."""
    too_large: ClassVar[str]
    """The message of a lock the funds cannot cover."""
    client_id_name: ClassVar[str]
    claims: ClassVar[str]
    """The namespace of its client ids' claims."""
    op: ClassVar[Op]

    def __init__(
        self,
        market: str,
        placement_id: str,
        client_id: str | None,
        command: Place | PlaceList,
        asset: str,
        lock: int,
    ) -> None:
        self.market = market
        self.id = placement_id
        self.client_id = client_id
        self.command = command
        self.asset = asset
        self.lock = lock

    @property
    @abstractmethod
    def reply_id(self) -> str:
        """The order id the engine's reply is recognized by."""

    @abstractmethod
    def pending(self, placement_id: str) -> Out:
        """The answer while the engine has not replied."""

    @abstractmethod
    async def stored(self, state: AppState, user: str, placement_id: str) -> Out | None:
        """What dbproc stored of it, if anything yet."""

    @abstractmethod
    def answer(self, events: list[Event]) -> Out:
        """What the engine's reply made of it; ApiError if refused."""

    @abstractmethod
    def recorded(self, body: dict[str, Any]) -> Out:
        """The answer a claim recorded."""


async def wait_reply(state: AppState, future: "asyncio.Future[list[Event]]") -> list[Event] | None:
    started = time.perf_counter()
    try:
        events = await asyncio.wait_for(future, state.settings.reply_timeout_seconds)
    except TimeoutError:
        return None
    ENGINE_REPLY.observe(time.perf_counter() - started)
    return events


async def _repeat(
    state: AppState, user: str, placement: Placement[Out], recorded: dict[str, Any]
) -> tuple[int, Out]:
    """The answer to a repeated client id: the first request's."""
    first_id = recorded["order_id"]
    if "body" in recorded:
        if recorded["status"] >= 400:
            raise ApiError(
                recorded["status"], recorded["body"]["code"], recorded["body"]["message"]
            )
        return recorded["status"], placement.recorded(recorded["body"])
    stored = await placement.stored(state, user, first_id)
    if stored is not None:
        return 200, stored
    return 202, placement.pending(first_id)


def _unknown_outcome(placement: Placement[Any]) -> ApiError:
    return ApiError(
        503,
        "outcome_unknown",
        f"lost the connection while enqueuing {placement.noun} {placement.id}: it may or may "
        f"not have been placed; look it up, or retry with the same {placement.client_id_name}",
    )


async def _enqueue(
    state: AppState, user: str, placement: Placement[Any], claims: Claims
) -> dict[str, Any] | None:
    """Claim the client id, lock and enqueue, in one step: None if done, else what the first
    request with the client id recorded (nothing done); ApiError for a refusal."""
    client_id = placement.client_id
    claim = None if client_id is None else claims.enqueued(user, client_id, placement.id)
    try:
        entry = await state.gateway.submit(
            placement.market, placement.command, user, placement.asset, placement.lock, claim
        )
    except ClaimTaken as taken:
        return claims.recorded(taken)
    except FundsError as error:
        ORDERS.labels("refused").inc()
        raise ApiError(400, error.reason, placement.too_large) from error
    except redis.exceptions.ConnectionError as error:
        # Outcome unknown: claimed and enqueued, or neither; a retry with the same id
        # either finds the claim or places it.
        ORDERS.labels("unknown").inc()
        raise _unknown_outcome(placement) from error
    if entry is None:
        ORDERS.labels("refused").inc()
        raise from_result_code(ResultCode.INSUFFICIENT_FUNDS)
    return None


async def place(
    state: AppState,
    user: str,
    placement: Placement[Out],
    claim_ttl_seconds: int | None = None,
    keep_answer: bool = True,
) -> tuple[int, Out]:
    """Place and wait for the engine: (200, the answer) or (202, pending); ApiError for a
    refusal. The client id stays claimed `claim_ttl_seconds` (client_order_id_ttl_seconds
    unless given), with the engine's answer for a repeat of the request unless not
    `keep_answer` (an id the api made up, which no client repeats: a request that names it
    anyway gets the order it names, as stored or pending, as when the answer came too late
    to be kept)."""
    ttl = claim_ttl_seconds or state.settings.client_order_id_ttl_seconds
    claims = Claims(state.pipe, ttl, placement.claims)
    with state.replies.expect(placement.op, placement.reply_id) as reply:
        recorded = await _enqueue(state, user, placement, claims)
        events = None if recorded is not None else await wait_reply(state, reply)
    if recorded is not None:
        return await _repeat(state, user, placement, recorded)
    if events is None:
        ORDERS.labels("pending").inc()
        return 202, placement.pending(placement.id)
    client_id = placement.client_id if keep_answer else None
    try:
        answer = placement.answer(events)
    except ApiError as error:
        ORDERS.labels("rejected").inc()
        if client_id is not None:
            refusal = {"code": error.code, "message": error.message}
            await claims.record(user, client_id, placement.id, error.status, refusal)
        raise
    ORDERS.labels("accepted").inc()
    if client_id is not None:
        await claims.record(user, client_id, placement.id, 200, answer.model_dump())
    return 200, answer


async def cancel(
    state: AppState, market: str, user: str, order_id: str, noun: str
) -> list[Event] | None:
    """Cancel one order and wait for the engine: its reply, None if it did not come in
    time; ApiError if the connection was lost (`noun`: what to look up then)."""
    with state.replies.expect("cancel", order_id) as reply:
        try:
            await state.gateway.submit(market, Cancel(order_id=order_id, user=user), user)
        except redis.exceptions.ConnectionError as error:
            raise ApiError(
                503, "outcome_unknown", f"lost the connection; look the {noun} up"
            ) from error
        return await wait_reply(state, reply)
