"""`python -m ws`: one ws replica (settings from EXCHANGE_WS_*; see ws/config.py)."""

import argparse
import logging
import socket

import uvicorn

from ws.app import create_app
from ws.binance import with_binance
from ws.config import Settings
from ws.server_protocol import LeanWebSocketProtocol
from ws.ws_api import with_ws_api


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
    config = uvicorn.Config(
        with_ws_api(with_binance(create_app(settings))),
        host=settings.host,
        port=settings.port,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_interval,
        ws_max_size=settings.max_message_bytes,
        ws=LeanWebSocketProtocol,  # uvicorn's, with less memory per connection
        ws_per_message_deflate=False,  # compression would cost more CPU than the fan-out
        log_level="warning",
        lifespan="on",
        # Not uvicorn's forwarding rules (which trust 127.0.0.1): the app reads X-Forwarded-For
        # only from the configured proxies (runtime/addresses.py).
        proxy_headers=False,
    )
    sockets = [config.bind_socket()]
    if settings.shared_port is not None:
        sockets.append(shared_socket(settings.host, settings.shared_port))
    uvicorn.Server(config).run(sockets)


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket other replicas may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    shared = socket.socket(family, socket.SOCK_STREAM)
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    shared.bind((host, port))
    shared.set_inheritable(True)
    return shared


if __name__ == "__main__":
    main()
