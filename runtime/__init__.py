"""What every service process shares: a cancel-safe pause, the Market registry reader and the
health and metrics endpoint. No exchange rules live here."""
