"""Shared contracts of the exchange: units and money, the Market spec, Redis keys, schemas.

Everything several components must agree on lives here and is imported, never copied.
No I/O happens in this package.
"""
