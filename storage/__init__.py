"""The relational and time-series store (docs/storage.md), shared by api and dbproc.

`models` holds the schema as SQLAlchemy models, `migrations/` its one Alembic history
(`migrate.upgrade`), `klines` the per-market candle relations (continuous aggregates on
TimescaleDB, views on plain PostgreSQL) that the operator and the local launcher provision.
"""
