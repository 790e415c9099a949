"""Panel dashboards: the live trading view and the ESG view (coming with their issues)."""
