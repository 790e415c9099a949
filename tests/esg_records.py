"""Hand-made company records for the ESG tests: every metric equal unless a test says otherwise."""

import pandas as pd

from esg.validation import validate_companies

BASE = {
    "revenue_musd": 100.0,
    "scope1_tco2e": 1000.0,
    "scope2_tco2e": 0.0,
    "energy_use_mwh": 5000.0,
    "renewable_energy_pct": 50.0,
    "water_use_m3": 20000.0,
    "lost_time_injury_rate": 1.0,
    "employee_turnover_pct": 10.0,
    "women_in_management_pct": 30.0,
    "training_hours_per_employee": 20.0,
    "board_independence_pct": 50.0,
    "ceo_pay_ratio": 100.0,
    "controversies": 1,
}


def record(company_id: str, sector: str = "Alpha", **metrics) -> dict:
    return {
        "company_id": company_id,
        "name": f"Company {company_id}",
        "ticker": company_id.upper(),
        "sector": sector,
        **BASE,
        **metrics,
    }


def companies(*records: dict) -> pd.DataFrame:
    """Records as the loader returns them (validated and typed)."""
    return validate_companies(pd.DataFrame(list(records)))
