"""The project's tests; tests/servers.py starts the real Redis and PostgreSQL they use."""
