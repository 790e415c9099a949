"""Panel dashboards: the ESG investment view."""
