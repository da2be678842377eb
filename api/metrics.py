"""The api's Prometheus metrics (served at /metrics)."""

from prometheus_client import Counter, Histogram

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

REQUESTS = Counter("api_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "api_request_seconds", "Time to answer an HTTP request", ["method", "route"], buckets=_BUCKETS
)
ORDERS = Counter(
    "api_orders_total",
    "Place requests that reached the lock-and-enqueue step, by outcome: refused (funds, "
    "nothing enqueued), accepted or rejected (by the engine), pending (no reply in time), "
    "unknown (connection lost while enqueuing)",
    ["outcome"],
)
ENGINE_REPLY = Histogram(
    "api_engine_reply_seconds", "From enqueuing a command to the engine's reply", buckets=_BUCKETS
)
API_KEY_LOOKUPS = Counter(
    "api_key_lookups_total",
    "API keys looked up in PostgreSQL (not in the cache), by whether there was one",
    ["found"],
)
AUTH_FAILURES = Counter(
    "api_auth_failures_total",
    "Refused credentials (wrong password, signature, token or key), by the answer: refused "
    "(401) or throttled (429: the address or account must wait)",
    ["outcome"],
)
