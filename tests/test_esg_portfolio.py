"""Portfolio analysis on holdings whose figures are worked out by hand here."""

import math

import pandas as pd
import pytest
from esg_records import companies, record
from hypothesis import given, settings
from hypothesis import strategies as st

from esg import Universe
from esg.loader import SAMPLE_COMPANIES, SAMPLE_HOLDINGS, load_companies, load_holdings
from esg.portfolio import normalise
from esg.validation import EsgDataError


@pytest.fixture(scope="module")
def universe():
    # Alpha: a1 intensity 100, a2 300 -> carbon scores 7 and 3, E 5.8 and 4.2, overall 5.32 and 4.68.
    # Beta: b1 alone -> every score 5, intensity 10.
    return Universe.build(
        companies(
            record("a1", scope1_tco2e=10_000.0),
            record("a2", scope1_tco2e=30_000.0),
            record("b1", sector="Beta"),
        )
    )


def holdings(**weights: float) -> pd.DataFrame:
    return pd.DataFrame({"holding": list(weights), "weight": list(weights.values())})


def test_weighted_scores_by_hand(universe):
    # weights 2, 1, 1, 1 -> 0.4, 0.2, 0.2, 0.2; "ghost" has no record, so coverage is 0.8 and the
    # covered weights rescale to 0.5, 0.25, 0.25. a1 is named by ticker, a2 by id, b1 by ticker.
    analysis = universe.portfolio(holdings(A1=2, a2=1, B1=1, ghost=1))
    assert analysis.coverage == pytest.approx(0.8)
    assert analysis.uncovered == ["ghost"]
    assert analysis.holdings["weight"].tolist() == pytest.approx([0.4, 0.2, 0.2, 0.2])
    assert analysis.scores["overall"] == pytest.approx(0.5 * 5.32 + 0.25 * 4.68 + 0.25 * 5)  # 5.08
    assert analysis.scores["E"] == pytest.approx(0.5 * 5.8 + 0.25 * 4.2 + 0.25 * 5)  # 5.2
    assert analysis.scores["S"] == pytest.approx(5.0) and analysis.scores["G"] == pytest.approx(5.0)
    assert analysis.rating == "BBB"
    assert analysis.carbon_intensity == pytest.approx(0.5 * 100 + 0.25 * 300 + 0.25 * 10)  # WACI 127.5


def test_contributions_and_drag_by_hand(universe):
    frame = universe.portfolio(holdings(A1=2, a2=1, B1=1, ghost=1)).holdings.set_index("holding")
    assert frame["score_contribution"].tolist()[:3] == pytest.approx([2.66, 1.17, 1.25])
    assert frame["carbon_contribution"].tolist()[:3] == pytest.approx([50.0, 75.0, 2.5])
    # drag = rescaled weight x (score - 5.08)
    assert frame["drag"].tolist()[:3] == pytest.approx([0.5 * 0.24, 0.25 * -0.4, 0.25 * -0.08])
    assert math.isnan(frame.loc["ghost", "drag"]) and not frame.loc["ghost", "covered"]


def test_the_holdings_that_drag_most_come_first(universe):
    draggers = universe.portfolio(holdings(A1=2, a2=1, B1=1, ghost=1)).draggers()
    assert draggers["holding"].tolist() == ["a2", "B1"]


def test_sector_view_by_hand(universe):
    by_sector = universe.portfolio(holdings(A1=2, a2=1, B1=1, ghost=1)).by_sector
    assert by_sector.index.tolist() == ["Alpha", "Beta"]
    assert by_sector["weight"].tolist() == pytest.approx([0.6, 0.2])
    assert by_sector["score_contribution"].tolist() == pytest.approx([2.66 + 1.17, 1.25])
    assert by_sector.loc["Alpha", "score"] == pytest.approx((0.4 * 5.32 + 0.2 * 4.68) / 0.6)
    assert by_sector.loc["Beta", "carbon_contribution"] == pytest.approx(2.5)


def test_nothing_covered_gives_no_rating(universe):
    analysis = universe.portfolio(holdings(nobody=1))
    assert analysis.coverage == 0 and analysis.rating is None and math.isnan(analysis.scores["overall"])


def test_one_company_held_twice_is_refused(universe):
    with pytest.raises(EsgDataError, match=r"row 2, column 'holding': names company a1 again \(row 1\)"):
        universe.portfolio(holdings(a1=1, A1=2))


def test_the_sample_portfolio():
    universe = Universe.build(load_companies(SAMPLE_COMPANIES))
    analysis = universe.portfolio(load_holdings(SAMPLE_HOLDINGS))
    assert analysis.coverage == pytest.approx(0.97) and analysis.uncovered == ["PRIVATE-CO-1"]
    assert analysis.rating is not None


weight_lists = st.lists(st.floats(0, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=10).filter(
    lambda w: sum(w) > 0
)


@given(weight_lists)
def test_normalised_weights_sum_to_one(weights):
    normalised = normalise(pd.Series(weights))
    assert normalised.sum() == pytest.approx(1.0) and (normalised >= 0).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.001, 1e3), min_size=3, max_size=3), st.floats(0.01, 100))
def test_the_portfolio_score_lies_among_its_holdings_and_ignores_the_weights_scale(weights, scale):
    universe = Universe.build(
        companies(record("a1", scope1_tco2e=10_000.0), record("a2", scope1_tco2e=30_000.0), record("b1", sector="Beta"))
    )
    analysis = universe.portfolio(pd.DataFrame({"holding": ["a1", "a2", "b1"], "weight": weights}))
    scaled = universe.portfolio(pd.DataFrame({"holding": ["a1", "a2", "b1"], "weight": [w * scale for w in weights]}))
    overall = universe.scored["overall"]
    assert overall.min() - 1e-9 <= analysis.scores["overall"] <= overall.max() + 1e-9
    assert analysis.holdings["score_contribution"].sum() == pytest.approx(analysis.scores["overall"])
    assert analysis.holdings["drag"].sum() == pytest.approx(0.0, abs=1e-9)
    assert scaled.scores["overall"] == pytest.approx(analysis.scores["overall"])
