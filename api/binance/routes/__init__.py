"""The /api/v3 routes, one module per resource, each an APIRouter that api.main includes.
Parameters come from the query string or the form body, as Binance clients send them; signed
routes check the key, timestamp and signature first (api.binance.params). Placing and
canceling go through api.services, the native api's code paths. No route module imports
another."""
