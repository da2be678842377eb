"""Liveness, readiness and Prometheus metrics, at the root (not under /api/v1)."""

import asyncio

import redis.exceptions
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is not reachable"}})
async def readyz(state: State) -> Response:
    problems = []
    try:
        await asyncio.wait_for(state.redis.ping(), 1)
    except (redis.exceptions.RedisError, OSError, TimeoutError):
        problems.append("redis")
    try:
        await asyncio.wait_for(state.db.fetchval("SELECT 1"), 1)
    except Exception:  # any failure of the pool or server means not ready
        problems.append("postgresql")
    if not state.replies.subscribed.is_set():
        problems.append("replies")
    if problems:
        return JSONResponse({"status": "unavailable", "failing": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
