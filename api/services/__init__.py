"""The api's business flows, below the routes (api.routes, api.binance.routes: parse, call,
render) and above the shared state and the gateway (api.state, ledger.gateway).

Placing and canceling go through one flow, api.services.submit (claim the client id, lock
and enqueue, map a refusal or a lost connection, wait for the engine's reply, record the
answer); api.services.orders and api.services.order_lists plan what they submit
(api.services.order_plans, api.services.list_plans). Services never import a route.
"""
