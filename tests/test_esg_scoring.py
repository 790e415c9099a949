"""Scores, pillars, overall, ratings and sector ranks on companies whose scores are worked out by hand here.

Method (docs/esg.md): metric score = clip(5 + 2 z, 0, 10), z within the sector with population std,
sign flipped where lower is better; pillars and overall are weighted means.
"""

import math

import pandas as pd
import pytest
from esg_records import companies, record
from hypothesis import given, settings
from hypothesis import strategies as st

from esg import Universe
from esg.metrics import METRICS, PILLARS
from esg.rating import RATINGS, bands, rating
from esg.scoring import score
from esg.weights import DEFAULT_WEIGHTS, Weights


def test_default_weights_cover_every_metric_and_sum_to_one_in_each_pillar():
    for pillar in PILLARS:
        members = [m.name for m in METRICS if m.pillar == pillar]
        assert members and math.fsum(DEFAULT_WEIGHTS.metrics[m] for m in members) == pytest.approx(1.0)
    assert set(DEFAULT_WEIGHTS.metrics) == {m.name for m in METRICS}
    assert math.fsum(DEFAULT_WEIGHTS.pillars.values()) == pytest.approx(1.0)
    assert all(w > 0 for w in [*DEFAULT_WEIGHTS.pillars.values(), *DEFAULT_WEIGHTS.metrics.values()])


BETTER = {  # a figure that makes a company better than the plain record on exactly one metric
    "carbon_intensity": {"scope1_tco2e": 500.0},
    "energy_intensity": {"energy_use_mwh": 4000.0},
    "water_intensity": {"water_use_m3": 10_000.0},
    "renewable_energy_pct": {"renewable_energy_pct": 80.0},
    "board_independence_pct": {"board_independence_pct": 90.0},
    "controversies": {"controversies": 0},
    "ceo_pay_ratio": {"ceo_pay_ratio": 50.0},
}


def _lead(*metrics: str, on: str = "overall") -> float:
    """How far ahead of an otherwise equal peer a company is (on a pillar or overall) when it is better on
    ``metrics``: each such metric scores 7 against 3."""
    change = {column: value for metric in metrics for column, value in BETTER[metric].items()}
    scored = score(companies(record("better", **change), record("plain")))
    return scored.loc["better", on] - scored.loc["plain", on]


def test_the_documented_emphases_show_in_the_scores():
    """docs/esg.md: carbon counts most within E; board independence and controversies equally within G,
    the CEO pay ratio half as much; the environment pillar more than governance overall."""
    carbon, energy, water = (_lead(m, on="E") for m in ("carbon_intensity", "energy_intensity", "water_intensity"))
    assert carbon > energy > 0 and energy == pytest.approx(water)
    board, controversies, pay = (_lead(m, on="G") for m in ("board_independence_pct", "controversies", "ceo_pay_ratio"))
    assert board == pytest.approx(controversies) == pytest.approx(2 * pay) and pay > 0
    environment = _lead("carbon_intensity", "energy_intensity", "water_intensity", "renewable_energy_pct")
    governance = _lead("board_independence_pct", "controversies", "ceo_pay_ratio")
    assert environment > governance > 0


def test_a_made_up_company_scored_by_hand():
    """Two companies in one sector; the first emits half as much (scope 1), has 70% renewables against 30%,
    and one more controversy. Every differing metric has z = +-1 (two values), so scores 7 and 3."""
    scored = score(
        companies(
            record("x", scope1_tco2e=500.0, renewable_energy_pct=70.0, controversies=2),
            record("y", scope1_tco2e=1000.0, renewable_energy_pct=30.0, controversies=1),
        )
    )
    e = 0.4 * 7 + 0.2 * 5 + 0.2 * 5 + 0.2 * 7  # carbon, energy, water, renewables
    g = 0.4 * 5 + 0.4 * 3 + 0.2 * 5  # independence, controversies, pay ratio
    assert scored.loc["x", ["E", "S", "G"]].tolist() == pytest.approx([e, 5.0, g])  # 6.2, 5, 4.2
    assert scored.loc["x", "overall"] == pytest.approx(0.4 * e + 0.3 * 5 + 0.3 * g)  # 5.24
    assert scored.loc["x", "rating"] == "BBB"


improvable = st.sampled_from(
    [("scope1_tco2e", -1), ("renewable_energy_pct", 1), ("lost_time_injury_rate", -1), ("ceo_pay_ratio", -1)]
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1, 100), min_size=1, max_size=6), improvable, st.floats(0.5, 50))
def test_a_better_metric_never_lowers_a_companys_score(peers, metric, step):
    """Improving one figure of one company (the others unchanged) never lowers its pillar or overall score."""
    column, better = metric

    def scored(value):
        others = (record(f"p{i}", **{column: v}) for i, v in enumerate(peers))
        return score(companies(record("me", **{column: value}), *others)).loc["me"]

    before, after = scored(50.0), scored(50.0 + better * step)
    for name in ("E", "S", "G", "overall"):
        assert after[name] >= before[name] - 1e-9, name


def test_carbon_intensity_scores_by_hand():
    # Alpha: intensities 100, 200, 300 tCO2e per USD m (revenue 100), everything else equal. Beta: one company.
    scored = score(
        companies(
            record("a1", scope1_tco2e=10_000.0),
            record("a2", scope1_tco2e=20_000.0),
            record("a3", scope1_tco2e=30_000.0),
            record("b1", sector="Beta", scope1_tco2e=99_000.0),
        )
    )
    std = math.sqrt((100**2 + 0 + 100**2) / 3)  # 81.65, population std around the mean of 200
    best, worst = 5 + 2 * (100 / std), 5 - 2 * (100 / std)  # lower intensity is better: 7.449 and 2.551
    assert scored["carbon_intensity"].tolist() == [100.0, 200.0, 300.0, 990.0]
    assert scored["carbon_intensity_score"].tolist() == pytest.approx([best, 5.0, worst, 5.0])
    # E = 0.4 carbon + 0.2 each for energy, water, renewables (all 5); S and G stay at 5
    e_best, e_worst = 0.4 * best + 0.6 * 5, 0.4 * worst + 0.6 * 5
    assert scored["E"].tolist() == pytest.approx([e_best, 5.0, e_worst, 5.0])
    assert scored["S"].tolist() == pytest.approx([5.0] * 4)
    assert scored["G"].tolist() == pytest.approx([5.0] * 4)
    overall = [0.4 * e_best + 0.6 * 5, 5.0, 0.4 * e_worst + 0.6 * 5, 5.0]  # 5.392, 5, 4.608, 5
    assert scored["overall"].tolist() == pytest.approx(overall)
    assert scored["rating"].tolist() == ["BBB", "BBB", "BBB", "BBB"]  # BBB is [4.286, 5.714)
    assert scored["sector_rank"].tolist() == [1, 2, 3, 1]
    assert scored["sector_size"].tolist() == [3, 3, 3, 1]


def test_every_metric_points_the_documented_way():
    # Two companies: each metric has z = +1 for the better one and -1 for the other, so scores 7 and 3.
    good = record(
        "good",
        scope1_tco2e=500.0,
        energy_use_mwh=4000.0,
        water_use_m3=10_000.0,
        renewable_energy_pct=80.0,
        lost_time_injury_rate=0.5,
        employee_turnover_pct=5.0,
        women_in_management_pct=40.0,
        training_hours_per_employee=40.0,
        board_independence_pct=90.0,
        ceo_pay_ratio=50.0,
        controversies=0,
    )
    scored = score(companies(good, record("plain")))
    metric_scores = scored.filter(like="_score")
    assert len(metric_scores.columns) == 11
    assert metric_scores.loc["good"].tolist() == pytest.approx([7.0] * 11)
    assert metric_scores.loc["plain"].tolist() == pytest.approx([3.0] * 11)
    assert scored.loc["good", ["E", "S", "G", "overall"]].tolist() == pytest.approx([7.0] * 4)
    assert scored.loc["good", "rating"] == "A"  # A is [5.714, 7.143)
    assert scored.loc["plain", "rating"] == "BB"  # BB is [2.857, 4.286)


def test_scores_are_clipped_at_ten_and_outliers_do_not_break_the_scale():
    # nine boards 50% independent, one 80%: mean 53, std sqrt((9 * 3^2 + 27^2) / 10) = 9
    records = [record(f"c{i}", board_independence_pct=50.0) for i in range(9)]
    scored = score(companies(*records, record("out", board_independence_pct=80.0)))
    assert scored.loc["out", "board_independence_pct_score"] == pytest.approx(10.0)  # 5 + 2 * 3 = 11, clipped
    assert scored.loc["c0", "board_independence_pct_score"] == pytest.approx(5 - 2 * 3 / 9)
    assert scored.loc["out", "G"] == pytest.approx(0.4 * 10 + 0.6 * 5)  # 7
    assert scored.loc["out", "overall"] == pytest.approx(0.3 * 7 + 0.7 * 5)  # 5.6
    assert scored.loc["c0", "overall"] == pytest.approx(0.3 * (0.4 * (5 - 2 / 3) + 0.6 * 5) + 0.7 * 5)


def test_equal_values_score_five_even_when_rounding_makes_a_tiny_spread():
    # 0.1 + 0.1 + 0.1 is not 0.3 in floating point; the spread is noise, not a difference
    scored = score(companies(*(record(f"c{i}", revenue_musd=0.1, scope1_tco2e=1.0) for i in range(3))))
    assert scored["carbon_intensity_score"].tolist() == [5.0, 5.0, 5.0]


def test_equal_scores_share_a_rank():
    scored = score(companies(record("a"), record("b"), record("c", controversies=3)))
    assert scored["sector_rank"].tolist() == [1, 1, 3]


def test_scorecard_shows_the_metrics_behind_the_scores():
    universe = Universe.build(companies(record("a1", scope1_tco2e=10_000.0), record("a2", scope1_tco2e=30_000.0)))
    card = universe.scorecard("a1")
    assert (card.name, card.ticker, card.sector, card.sector_rank, card.sector_size) == (
        "Company a1",
        "A1",
        "Alpha",
        1,
        2,
    )
    carbon = card.metrics.loc["carbon_intensity"]
    assert (carbon["value"], carbon["sector_mean"], carbon["better"]) == (100.0, 200.0, "lower")
    assert carbon["score"] == pytest.approx(7.0) and carbon["weight"] == 0.4
    assert card.pillars["E"] == pytest.approx(0.4 * 7 + 0.6 * 5)
    assert card.overall == pytest.approx(0.4 * (0.4 * 7 + 0.6 * 5) + 0.6 * 5)
    with pytest.raises(KeyError, match="no company with id 'zz'"):
        universe.scorecard("zz")


@pytest.mark.parametrize(
    ("score_", "expected"),
    [
        (10.0, "AAA"),
        (60 / 7, "AAA"),
        (8.57, "AA"),
        (50 / 7, "AA"),
        (7.14, "A"),
        (5.72, "A"),
        (5.71, "BBB"),
        (4.29, "BBB"),
        (4.28, "BB"),
        (2.86, "BB"),
        (2.85, "B"),
        (1.43, "B"),
        (1.42, "CCC"),
        (0.0, "CCC"),
    ],
)
def test_rating_bands(score_, expected):
    assert rating(score_) == expected


@pytest.mark.parametrize("bad", [-0.01, 10.01, float("nan")])
def test_a_score_outside_the_scale_has_no_rating(bad):
    with pytest.raises(ValueError, match="lies in"):
        rating(bad)


def test_bands_cover_the_scale_without_gaps():
    listed = bands()
    assert [b[0] for b in listed] == list(RATINGS)
    assert listed[0][2] == 10.0 and listed[-1][1] == 0.0
    assert all(listed[i][1] == listed[i + 1][2] for i in range(len(listed) - 1))


@given(st.floats(0, 10), st.floats(0, 10))
def test_ratings_never_fall_as_the_score_rises(a, b):
    low, high = sorted((a, b))
    assert RATINGS.index(rating(high)) <= RATINGS.index(rating(low))


@pytest.mark.parametrize(
    ("pillars", "message"),
    [({"E": 0.5, "S": 0.3, "G": 0.3}, "sum to 1"), ({"E": 0.5, "S": 0.5}, "name exactly")],
)
def test_weights_are_checked(pillars, message):
    with pytest.raises(ValueError, match=message):
        Weights(pillars=pillars, metrics=DEFAULT_WEIGHTS.metrics)


def test_other_weights_change_the_overall_score():
    frame = companies(record("a1", scope1_tco2e=10_000.0), record("a2", scope1_tco2e=30_000.0))
    climate = Weights(pillars={"E": 1.0, "S": 0.0, "G": 0.0}, metrics=DEFAULT_WEIGHTS.metrics)
    assert score(frame, climate).loc["a1", "overall"] == pytest.approx(0.4 * 7 + 0.6 * 5)


sector_values = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(sector_values, st.floats(0.01, 100), st.floats(0, 1e4))
def test_scores_stay_on_the_scale_and_ignore_the_unit(values, scale, shift):
    # z-scores do not change when every value in a sector is scaled or shifted alike
    def scored(transform):
        frame = companies(
            *(record(f"c{i}", board_independence_pct=0.0, ceo_pay_ratio=transform(v)) for i, v in enumerate(values))
        )
        return score(frame)["ceo_pay_ratio_score"]

    plain = scored(lambda v: v)
    assert plain.between(0, 10).all()
    assert scored(lambda v: v * scale + shift).to_numpy() == pytest.approx(plain.to_numpy(), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(sector_values, sector_values)
def test_a_sector_is_scored_without_looking_at_other_sectors(alpha, beta):
    alone = score(companies(*(record(f"a{i}", ceo_pay_ratio=v) for i, v in enumerate(alpha))))
    both = score(
        companies(
            *(record(f"a{i}", ceo_pay_ratio=v) for i, v in enumerate(alpha)),
            *(record(f"b{i}", sector="Beta", ceo_pay_ratio=v) for i, v in enumerate(beta)),
        )
    )
    pd.testing.assert_frame_equal(both.loc[alone.index], alone)
