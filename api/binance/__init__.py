"""A subset of the Binance spot REST API (`/api/v3/...`) over the same engines, ledger and
API keys as the native api: docs/binance.md lists what is served and every difference."""
