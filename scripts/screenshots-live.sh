#!/usr/bin/env bash
# `make screenshots-live`: the README's picture of the trading page on a running exchange.
# Starts the local stack (`exchange up`: the example markets, their market makers and the
# taker simulator), lets it trade for WARM_UP seconds, photographs btc-usd's trading page
# (frontend/e2e/live.mjs) into docs/screenshots/trading-live.png, and stops the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
WARM_UP=${WARM_UP:-300}

"$BIN/exchange" up
trap '"$BIN/exchange" down' EXIT
sleep "$WARM_UP"
"$BIN/exchange" status
BASE_URL="http://127.0.0.1:${EXCHANGE_FRONTEND_PORT:-3000}" node frontend/e2e/live.mjs
