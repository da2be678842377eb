from tests.storage.conftest import database, db

__all__ = ["database", "db"]
