"""The ledger: every balance lives in Redis and moves only through its Lua scripts.

`scripts` loads the scripts, `gateway` is how funds and commands enter the exchange (the api's
and the operator's side), `locks` is the rule for what an order locks (shared by the api and
the engine), and `reference` is the Python statement of the scripts' rules that tests hold
them to (and that the engine uses to net a batch's balance moves).
"""

from ledger.compiled import select_build

BUILD = select_build()
"""Which build of the engine's hot modules this process runs (see `ledger.compiled`)."""
