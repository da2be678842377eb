"""Local mode: the whole exchange on one machine, no Kubernetes, no Docker.

`servers` runs Redis and PostgreSQL; `plan` says which processes the stack consists of
(one engine and one market maker per market in the registry, and the shared services);
`supervisor` keeps them running, restarting what dies; `markets` provisions and retires
markets with the operator's own provisioning code; `cli` is the `exchange` command.
"""
