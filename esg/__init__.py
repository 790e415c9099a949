"""ESG screening: company records, sector-relative scores and ratings, what-ifs, portfolios, news alerts.

Everything here is pure (data frames in, data frames and dataclasses out) except ``loader`` (files) and
``alert_store`` (the SQLite file alerts are kept in). The method is documented in ``docs/esg.md``.
"""

from esg.universe import Universe

__all__ = ["Universe"]
