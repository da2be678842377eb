"""`python -m api`: the HTTP API on uvicorn (settings from EXCHANGE_API_*)."""

import uvicorn

from api.config import get_settings
from api.logs import configure


def main() -> None:
    settings = get_settings()
    configure(settings.log_level)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        # Not uvicorn's forwarding rules (which trust 127.0.0.1): the app reads X-Forwarded-For
        # only from the configured proxies (runtime/addresses.py).
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
