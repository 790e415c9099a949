"""Clients of the venues' public market-data connections: each hands on every raw message it receives,
unchanged, with its local receive time (``venues.base.Received``)."""
