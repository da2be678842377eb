"""The order routes a trading bot calls most, served without the framework's per-request work.

FastAPI answers a request through five more middleware layers, a route search and its
dependency solver; for placing and canceling an order (`POST /api/v1/order`,
`DELETE /api/v1/order/{id}`, `POST /api/v3/order`) that was most of the api's CPU time.
`HotRoutes` sits inside `RequestContext` (request id, body limit, metrics and log stay as they
are) and outside CORS, and answers these routes itself with the routes' own pieces: the same
fields validate the order or its id, the same dependency authenticates, the same service
places or cancels, the same response field serializes the answer and the app's own exception
handlers answer its errors. Whatever it does not handle exactly as the framework would (a
browser's Origin, another content type, a body or id that does not validate) it passes to the
framework untouched, before it has done anything with side effects; the framework then
answers as it always did (the 422, or the CORS headers).

The routes stay registered as they were, so the OpenAPI document is the same.
"""

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import deps
from api.binance.routes import orders as binance_orders
from api.routes import orders
from api.services import orders as order_service

Handler = Callable[[Request, APIRoute], Awaitable[Response | None]]
"""Answers a hot route's request, or None (before any side effect) to leave it to FastAPI."""
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def _replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` for an app reading a body this middleware has already read."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _failing(error: Exception) -> Receive:
    """`receive` failing as reading the body here failed: the framework answers that."""

    async def fail() -> Message:
        raise error

    return fail


async def place_order(request: Request, route: APIRoute) -> Response | None:
    """`api.routes.orders.place_order`. The framework parses the JSON first, solves the
    dependencies (authentication: its side effects) and only then validates the body; an
    order that does not parse or validate goes to the framework, so that order is kept."""
    body_field = route.body_field
    assert body_field is not None
    if request.headers.get("content-type") != "application/json":
        return None
    try:
        received = json.loads(await request.body())
    except Exception:  # whatever it is, the framework's answer is the one
        return None
    order, errors = body_field.validate(received, loc=("body",))
    if errors:
        return None
    state = request.state.app
    user = deps.require(await deps.authenticate(request, state), "trade")
    return _answer(route, *await order_service.place(state, user.user_id, order))


async def cancel_order(request: Request, route: APIRoute) -> Response | None:
    """`api.routes.orders.cancel_order`. The framework validates the order id after
    authenticating; an id that does not validate goes to the framework."""
    [id_field] = route.dependant.path_params
    order_id, errors = id_field.validate(request.path_params["order_id"], loc=("path", "order_id"))
    if errors:
        return None
    state = request.state.app
    user = deps.require(await deps.authenticate(request, state), "trade")
    return _answer(route, *await order_service.cancel(state, user.user_id, order_id))


def _answer(route: APIRoute, status: int, content: Any) -> Response:
    """What the framework answers for an endpoint's `content` and status: the bytes of the
    route's response field."""
    field = route.response_field
    assert field is not None
    answer, errors = field.validate(content, loc=("response",))
    if errors:
        raise ResponseValidationError(errors, body=content)
    content = field.serialize_json(answer, by_alias=True)
    return Response(content, status, media_type="application/json")


async def binance_order(request: Request, _: APIRoute) -> Response | None:
    """`api.binance.routes.orders.new_order`: its parameters are its own to read."""
    return await binance_orders.new_order(request, request.state.app)


HotRoute = tuple[str, re.Pattern[str], APIRoute, Handler]
"""A method, the full path's pattern, the registered route and what answers it."""


def hot_routes(app: FastAPI) -> list[HotRoute]:
    """The hot routes of `app`, each with its registered route."""
    handlers: dict[Callable[..., Any], Handler] = {
        orders.place_order: place_order,
        orders.cancel_order: cancel_order,
        binance_orders.new_order: binance_order,
    }
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route  # what the framework runs, and sets as scope["route"]
        if isinstance(route, APIRoute) and route.endpoint in handlers and context.path:
            pattern = compile_path(context.path)[0]
            for method in route.methods or ():
                found.append((method, pattern, route, handlers[route.endpoint]))
    assert len(found) == len(handlers), "a hot route is not registered"
    return found


class HotRoutes:
    def __init__(
        self,
        app: ASGIApp,
        routes: list[HotRoute],
        exception_handlers: Mapping[Any, Any],
    ) -> None:
        self.app = app
        self.routes = routes
        # Those the framework's ExceptionMiddleware applies; Exception's (a 500) is applied
        # outside, by ServerErrorMiddleware, for both paths alike.
        assert not any(isinstance(key, int) for key in exception_handlers)
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self._match(scope)
        if hot is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await Request(scope, receive).body()
        except Exception as error:  # a disconnect, or a body over the limit
            await self.app(scope, _failing(error), send)
            return
        route, handler = hot
        request = Request(scope, _replayed(body, receive))
        try:
            response = await handler(request, route)
        except Exception as error:
            response = await self._handled(request, error)
        if response is None:
            await self.app(scope, _replayed(body, receive), send)
        else:
            await response(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[APIRoute, Handler] | None:
        """The hot route `scope` asks for, its path parameters and route set in the scope
        as the framework sets them (RequestContext's metrics label them by the route)."""
        if scope["type"] != "http" or scope.get("root_path") or _has_origin(scope):
            return None
        for method, pattern, route, handler in self.routes:
            matched = pattern.match(scope["path"]) if method == scope["method"] else None
            if matched:
                scope["path_params"] = matched.groupdict()
                scope["route"] = route
                return route, handler
        return None

    async def _handled(self, request: Request, error: Exception) -> Response:
        """The app's answer to `error`, as its ExceptionMiddleware would give it."""
        for kind in type(error).__mro__:
            handler = self.exception_handlers.get(kind)
            if handler is not None and kind is not Exception:
                answer: Response = await handler(request, error)
                return answer
        raise error


def _has_origin(scope: Scope) -> bool:
    """A browser's request: CORS answers it."""
    return any(name == b"origin" for name, _ in scope["headers"])
