"""The Kopf operator: it watches Market resources and provisions, for each one, the engine and
market-maker Deployments, the Redis streams, consumer groups and registry entry, and the
per-market aggregates, keeping the Market's status conditions true.

The folder is operator/ but the import name is xch_operator, so that the standard library's
operator module is not shadowed.
"""
