"""The project's tests; tests/harness/ starts the real servers and services they run against."""
