"""The app factory: routers under /api/v1, one error mapping, and one lifespan that owns the
Redis client, the PostgreSQL pool, the gateway and the reply listener."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from api import errors
from api.binance import errors as binance_errors
from api.binance.routes import account, market, user_stream, wallet, ws_api
from api.binance.routes import order_lists as binance_lists
from api.binance.routes import orders as binance_orders
from api.config import Settings, get_settings
from api.hot_routes import HotRoutes, hot_routes
from api.keyring import Keyring, reseal
from api.markets import Registry
from api.middleware import RequestContext
from api.ratelimit import AuthFailures, RateLimiter
from api.replies import ReplyListener
from api.routes import accounts, funds, health, marketdata, order_lists, orders, portfolio
from api.security import Passwords
from api.state import AppState
from ledger.gateway import Gateway
from runtime.addresses import ClientAddresses
from runtime.heap import freeze_startup_heap
from runtime.redis_client import redis_client
from runtime.redis_pipe import PipelinedRedis, address_of

API_V1 = "/api/v1"


def _operation_id(route: APIRoute) -> str:
    """`{tag}-{name}` operation ids: stable names for generated clients."""
    tag = str(route.tags[0]).replace(" ", "_") if route.tags else "default"
    return f"{tag}-{route.name}"


async def keep_session(_: asyncpg.Connection) -> None:
    """The pool's reset of a released connection, after asyncpg's own (which rolls back a
    transaction left open): nothing more. The api never changes a session's state (no SET,
    LISTEN, advisory lock or held cursor), so asyncpg's default reset query (RESET ALL,
    UNLISTEN *, ...: a round trip to PostgreSQL after every read) has nothing to reset."""


@contextlib.asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    # from_url clients do not retry a command whose reply was lost (see ledger.gateway).
    client = redis_client(settings.redis_url)
    db = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=settings.db_pool_size, reset=keep_session
    )
    # The order path's commands go over one pipelined connection (runtime.redis_pipe).
    address = address_of(client)
    pipe = PipelinedRedis(address)
    listener = ReplyListener(address, settings.instance)
    task = asyncio.create_task(listener.run(), name="replies")
    keyring = Keyring.of(settings.secrets_key, settings.secrets_old_keys)
    try:
        await reseal(db, keyring)
        await asyncio.wait_for(listener.subscribed.wait(), 10)
        yield AppState(
            settings=settings,
            redis=client,
            pipe=pipe,
            db=db,
            gateway=Gateway(client, reply_to=settings.instance, scripts_on=pipe),
            replies=listener,
            registry=Registry(client, settings.registry_cache_seconds),
            limiter=RateLimiter(pipe, settings.rate_limit_window_seconds),
            failures=AuthFailures(
                client, settings.auth_failure_memory_seconds, settings.auth_backoff_max_seconds
            ),
            addresses=ClientAddresses(settings.trusted_proxies),
            passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
            keyring=keyring,
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.close()
        await client.aclose()
        await pipe.aclose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        async with open_state(settings) as state:
            freeze_startup_heap()
            yield {"app": state}

    app = FastAPI(
        title="Exchange API",
        version="1",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    errors.install(app)
    binance_errors.install(app)
    # Each router straight onto the app: a router included in a router costs FastAPI a
    # second route resolution on every request.
    for module in (accounts, funds, orders, order_lists, marketdata, portfolio):
        app.include_router(module.router, prefix=API_V1)
    for module in (market, binance_orders, account, user_stream, binance_lists, wallet, ws_api):
        app.include_router(module.router)
    app.include_router(health.router)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-API-KEY",
            "X-API-TIMESTAMP",
            "X-API-SIGNATURE",
            "X-MBX-APIKEY",
            "X-Request-ID",
        ],
        expose_headers=["Retry-After", "X-Request-ID"],
    )
    # Inside RequestContext, outside CORS (a browser's request goes the framework's way).
    app.add_middleware(HotRoutes, routes=hot_routes(app), exception_handlers=app.exception_handlers)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    return app
