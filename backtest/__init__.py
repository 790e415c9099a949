"""Event-driven backtests over recordings: the flow's own books and predictions, a simulated venue with
latency and queues, costs, strategies on one interface, and the economics they give (docs/backtest.md)."""
