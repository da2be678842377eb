"""`python -m ws`: one ws replica (settings from EXCHANGE_WS_*; see ws/config.py)."""

import argparse
import logging

import uvicorn

from ws.app import create_app
from ws.binance import with_binance
from ws.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", help="overrides EXCHANGE_WS_HOST")
    parser.add_argument("--port", type=int, help="overrides EXCHANGE_WS_PORT")
    parser.add_argument("--redis-url", help="overrides EXCHANGE_WS_REDIS_URL")
    args = parser.parse_args()
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("redis_url", args.redis_url))
        if value is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        with_binance(create_app(settings)),
        host=settings.host,
        port=settings.port,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_interval,
        ws_max_size=settings.max_message_bytes,
        ws_per_message_deflate=False,  # compression would cost more CPU than the fan-out
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
