"""The routes a trading bot calls most, served without the framework's per-request work.

FastAPI answers a request through five more middleware layers, a route search and its
dependency solver; for placing and canceling an order (`POST /api/v1/order`,
`DELETE /api/v1/order/{id}`, `POST /api/v3/order`) and for the reads a bot makes between
orders (`GET /api/v1/orders/open`, `/api/v1/balances`, `/api/v1/depth`, `/api/v3/openOrders`)
that was most of the api's CPU time. `HotRoutes` sits inside `RequestContext` (request id,
body limit, metrics and log stay as they are) and outside CORS, and answers these routes
itself with the routes' own pieces: the same fields validate the order, its id or the query,
the same dependencies authenticate and count, the same endpoint or service answers, the same
response field serializes the answer and the app's own exception handlers answer its errors.
Whatever it does not handle exactly as the framework would (a browser's Origin, another
content type, a body, id or query that does not validate) it passes to the framework
untouched, before it has done anything with side effects; the framework then answers as it
always did (the 422, or the CORS headers).

The routes stay registered as they were, so the OpenAPI document is the same.
"""

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, get_args

from fastapi import FastAPI, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import deps
from api.binance.routes import orders as binance_orders
from api.routes import funds, marketdata, orders
from api.services import orders as order_service
from api.state import AppState

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


def _dependency(alias: Any) -> Callable[..., Any]:
    """The function behind an `Annotated[..., Depends(f)]` alias."""
    depends: params.Depends = get_args(alias)[1]
    assert depends.dependency is not None
    return depends.dependency


async def _state(_: Request, state: AppState) -> AppState:
    return state


async def _reader(request: Request, state: AppState) -> deps.Principal:
    return deps.require(await deps.authenticate(request, state), "read")


_DEPENDENCIES: dict[Callable[..., Any], Callable[[Request, AppState], Awaitable[Any]]] = {
    deps.get_state: _state,
    _dependency(deps.Reader): _reader,
    deps.limit_ip: deps.limit_ip,
}
"""What `solved` knows to solve, each as the framework solves it."""


async def solved(request: Request, route: APIRoute) -> Response | None:
    """The endpoint called as the framework calls it: its dependencies solved in order, the
    request and the query's fields (`solvable` checked it needs nothing else). The framework
    validates the query after the dependencies (their side effects: counting, authenticating);
    a query that does not validate goes to the framework."""
    dependant = route.dependant
    values: dict[str, Any] = {}
    if dependant.query_params:  # parsing the query costs as much even when nothing is read
        values, errors = request_params_to_args(dependant.query_params, request.query_params)
        if errors:
            return None
    state = request.state.app
    for dependency in dependant.dependencies:
        assert dependency.call is not None
        value = await _DEPENDENCIES[dependency.call](request, state)
        if dependency.name is not None:
            values[dependency.name] = value
    if dependant.request_param_name is not None:
        values[dependant.request_param_name] = request
    content = await route.endpoint(**values)
    return content if isinstance(content, Response) else _answer(route, 200, content)


def solvable(route: APIRoute) -> bool:
    """Whether `solved` answers `route` as the framework would: it takes nothing but query
    fields, the request and dependencies in `_DEPENDENCIES`, and answers 200."""
    dependant = route.dependant
    return (
        route.status_code is None
        and isinstance(route.response_class, DefaultPlaceholder)
        and all(dependency.call in _DEPENDENCIES for dependency in dependant.dependencies)
        and not (
            dependant.path_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
            or dependant.websocket_param_name
            or dependant.http_connection_param_name
        )
    )


HotRoute = tuple[str, re.Pattern[str], APIRoute, Handler]
"""A method, the full path's pattern, the registered route and what answers it."""


def hot_routes(app: FastAPI) -> list[HotRoute]:
    """The hot routes of `app`, each with its registered route."""
    handlers: dict[Callable[..., Any], Handler] = {
        orders.place_order: place_order,
        orders.cancel_order: cancel_order,
        binance_orders.new_order: solved,
        orders.open_orders: solved,
        funds.balances: solved,
        marketdata.depth: solved,
        binance_orders.open_orders: solved,
    }
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route  # what the framework runs, and sets as scope["route"]
        if isinstance(route, APIRoute) and route.endpoint in handlers and context.path:
            handler = handlers[route.endpoint]
            assert handler is not solved or solvable(route), f"{context.path} is not solvable"
            pattern = compile_path(context.path)[0]
            # HEAD (which GET routes take too) goes to the framework: it sends no body.
            for method in (route.methods or set()) - {"HEAD"}:
                found.append((method, pattern, route, handler))
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
