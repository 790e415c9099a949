"""What-if: the change moves exactly the figures it should, scored against the sector as it was."""

import math

import pytest
from esg_records import companies, record
from hypothesis import given, settings
from hypothesis import strategies as st

from esg import Universe
from esg.loader import SAMPLE_COMPANIES, load_companies
from esg.validation import EsgDataError
from esg.whatif import LEVERS, Change, apply_changes


@pytest.fixture
def universe():
    # Alpha: intensities 100, 200, 300 (revenue 100); Beta: two companies
    return Universe.build(
        companies(
            record("a1", scope1_tco2e=8_000.0, scope2_tco2e=2_000.0),
            record("a2", scope1_tco2e=20_000.0),
            record("a3", scope1_tco2e=30_000.0),
            record("b1", sector="Beta", controversies=0),
            record("b2", sector="Beta", controversies=4),
        )
    )


def test_cutting_emissions_by_ten_percent_by_hand(universe):
    result = universe.what_if("a3", [Change("emissions", percent=-10)])
    # a3's intensity falls from 300 to 270, scored against Alpha as loaded: mean 200, std sqrt(20000 / 3)
    std = math.sqrt(20_000 / 3)
    carbon_before, carbon_after = 5 - 2 * 100 / std, 5 - 2 * 70 / std
    e_before, e_after = 0.4 * carbon_before + 0.6 * 5, 0.4 * carbon_after + 0.6 * 5
    comparison = result.comparison()
    assert comparison.loc["E", "original"] == pytest.approx(e_before)
    assert comparison.loc["E", "what-if"] == pytest.approx(e_after)
    assert comparison.loc["E", "change"] == pytest.approx(e_after - e_before)
    assert comparison.loc["S", "change"] == 0 and comparison.loc["G", "change"] == 0
    assert comparison.loc["overall", "what-if"] == pytest.approx(0.4 * e_after + 0.6 * 5)
    changes = result.metric_changes()
    assert changes.index.tolist() == ["carbon_intensity"]  # nothing else moved
    assert changes.loc["carbon_intensity", "what-if value"] == pytest.approx(270.0)
    assert changes.loc["carbon_intensity", "what-if score"] == pytest.approx(carbon_after)


def test_both_scopes_move_by_the_same_share(universe):
    changed = apply_changes(universe.companies, "a1", [Change("emissions", percent=-10)])
    assert changed.loc["a1", ["scope1_tco2e", "scope2_tco2e"]].tolist() == pytest.approx([7_200.0, 1_800.0])


def test_setting_emissions_shares_the_total_pro_rata(universe):
    changed = apply_changes(universe.companies, "a1", [Change("emissions", value=5_000.0)])
    assert changed.loc["a1", ["scope1_tco2e", "scope2_tco2e"]].tolist() == pytest.approx([4_000.0, 1_000.0])


def test_nothing_but_the_company_and_the_lever_changes(universe):
    changed = apply_changes(universe.companies, "a3", [Change("water_use_m3", percent=-50)])
    diff = changed.compare(universe.companies)
    assert diff.index.tolist() == ["a3"] and diff.columns.get_level_values(0).unique().tolist() == ["water_use_m3"]
    assert changed.loc["a3", "water_use_m3"] == 10_000.0
    assert universe.companies.loc["a3", "water_use_m3"] == 20_000.0  # the original is left alone


def test_several_changes_at_once_by_hand(universe):
    # Beta's controversies are 0 and 4: mean 2, std 2. b2 scores 5 - 2 * 1 = 3 there, so G = 0.4 * 3 + 0.6 * 5.
    result = universe.what_if("b2", [Change("controversies", value=0), Change("board_independence_pct", value=100)])
    assert result.before.pillars["G"] == pytest.approx(4.2)
    assert result.before.overall == pytest.approx(0.3 * 4.2 + 0.7 * 5)
    # 0 controversies scores 5 + 2 * 1 = 7; both boards were 50 (no spread), so 100 still scores 5
    assert result.after.pillars["G"] == pytest.approx(0.4 * 7 + 0.6 * 5)
    assert result.after.overall == pytest.approx(0.3 * 5.8 + 0.7 * 5)
    assert result.comparison().loc["sector rank"].tolist() == ["2 of 2", "1 of 2", "+1"]
    assert not result.rating_changed  # 4.76 and 5.24 are both BBB


def test_on_the_sample_a_ten_percent_cut_lifts_marrowfell_steel_a_band():
    universe = Universe.build(load_companies(SAMPLE_COMPANIES))
    result = universe.what_if("MA01", [Change("emissions", percent=-10)])
    assert (result.before.rating, result.after.rating) == ("BB", "BBB")
    assert result.comparison().loc["rating", "change"] == "changed"


def test_peers_keep_their_scores(universe):
    result = universe.what_if("a3", [Change("emissions", percent=-90)])
    # intensity 30 now beats both peers: a3 ranks first, peers' scores unchanged
    assert result.after.sector_rank == 1 and result.before.sector_rank == 3
    assert universe.scorecard("a1").overall == universe.scored.loc["a1", "overall"]


@pytest.mark.parametrize(
    ("change", "column", "message"),
    [
        (Change("renewable_energy_pct", percent=200), "renewable_energy_pct", "at most 100"),
        (Change("revenue_musd", percent=-100), "revenue_musd", "greater than 0"),
        (Change("scope1_tco2e", value=-5), "scope1_tco2e", "at least 0"),
    ],
)
def test_an_impossible_change_is_refused_naming_the_column(universe, change, column, message):
    with pytest.raises(EsgDataError, match=message) as error:
        universe.what_if("a1", [change])
    assert error.value.problems[0].column == column


def test_counts_stay_whole(universe):
    changed = apply_changes(universe.companies, "b2", [Change("controversies", percent=-60)])
    assert changed.loc["b2", "controversies"] == 2  # 1.6 rounds to 2


def test_a_change_names_a_known_lever_and_one_amount():
    with pytest.raises(ValueError, match="unknown lever"):
        Change("dividends", percent=5)
    with pytest.raises(ValueError, match="either a percent or a value"):
        Change("emissions", percent=5, value=3)
    assert Change("emissions", percent=-10).describe() == "Emissions, scopes 1+2 -10%"


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(set(LEVERS) - {"revenue_musd"})),
    st.sampled_from(["a1", "a2", "a3", "b1", "b2"]),
)
def test_a_change_of_nothing_changes_nothing(lever, company_id):
    universe = Universe.build(
        companies(
            record("a1", scope1_tco2e=8_000.0, scope2_tco2e=2_000.0),
            record("a2", scope1_tco2e=20_000.0, water_use_m3=1e5),
            record("a3", scope1_tco2e=30_000.0, ceo_pay_ratio=20.0),
            record("b1", sector="Beta", controversies=0),
            record("b2", sector="Beta", controversies=4),
        )
    )
    result = universe.what_if(company_id, [Change(lever, percent=0)])
    assert result.after.overall == result.before.overall and result.after.rating == result.before.rating
    assert result.metric_changes().empty
