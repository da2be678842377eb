"""Scripts of the Makefile's end-to-end targets; the tests import kind_e2e_trade's helpers."""
