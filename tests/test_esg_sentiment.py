"""Sentiment alerts on real VADER scores: matching headlines to companies, the alert rule, the alert store."""

import math
import sqlite3
from pathlib import Path

import pytest
import vaderSentiment
from esg_records import companies, record

from esg.alert_store import AlertStore, db_path
from esg.loader import SAMPLE_COMPANIES, SAMPLE_HEADLINES, SAMPLE_HOLDINGS, HeadlineFile, load_companies, load_holdings
from esg.portfolio import resolve
from esg.sentiment import CompanyMatcher, Headline, compound, raise_alerts, score_headlines


@pytest.fixture(scope="module")
def frame():
    return companies(
        record("c1", name="Aldervale Power", ticker="ALDV"),
        record("c2", name="Aldervale Power Grid", ticker="APG"),
        record("c3", name="Arc Foods", ticker="ARC"),
    )


def news(*texts: str) -> list[Headline]:
    return [Headline(1_730_700_000_000_000_000 + i, text, "Test Wire") for i, text in enumerate(texts)]


def vader_by_hand(*words: str) -> float:
    """VADER's compound score of a text whose only rated words are ``words`` and that no rule modifies:
    the sum s of their valences in the lexicon shipped in the wheel, normalised as s / sqrt(s^2 + 15)."""
    lexicon = Path(vaderSentiment.__file__).with_name("vader_lexicon.txt").read_text(encoding="utf-8")
    valence = {line.split("\t")[0]: float(line.split("\t")[1]) for line in lexicon.splitlines() if line}
    total = sum(valence[word] for word in words)
    return round(total / math.sqrt(total * total + 15), 4)


def test_headlines_are_scored_by_vader():
    assert compound("Explosion at refinery kills two workers") == vader_by_hand("kills")  # -0.5423
    assert compound("Company wins award for river restoration") == vader_by_hand("wins", "award")  # 0.802
    assert compound("Company reports quarterly figures") == 0.0


def test_companies_are_found_by_name_in_any_case_and_by_ticker_as_written(frame):
    matcher = CompanyMatcher(frame)
    assert matcher.match("ALDERVALE POWER cuts jobs") == ("c1",)
    assert matcher.match("Aldervale Power Grid's outage") == ("c2",)  # the fullest name wins
    assert matcher.match("$ARC and ALDV fall") == ("c3", "c1")  # in order of mention
    assert matcher.match("Arc Foods (ARC) recalls soup") == ("c3",)
    assert matcher.match("arc welding; ARCHIVE; Aldervale Powerful; XALDV") == ()


def test_strongly_negative_news_about_a_holding_raises_an_alert(frame):
    scored = score_headlines(
        news(
            "Explosion at Aldervale Power plant kills two workers",  # -0.54, held: alert
            "Explosion at Arc Foods plant kills two workers",  # as negative, not held: no alert
            "Aldervale Power delays wind farm after dispute",  # -0.40, not strong enough
            "Aldervale Power wins award for river restoration",  # positive
        ),
        CompanyMatcher(frame),
    )
    assert [s.company_ids for s in scored] == [("c1",), ("c3",), ("c1",), ("c1",)]
    assert scored[0].compound == pytest.approx(-0.5423, abs=1e-4) and scored[2].compound == pytest.approx(-0.4019)
    names = frame["name"].to_dict()
    (alert,) = raise_alerts(scored, {"c1"}, names)
    assert (alert.company_id, alert.company_name, alert.source) == ("c1", "Aldervale Power", "Test Wire")
    assert alert.headline.startswith("Explosion") and alert.timestamp_ns == 1_730_700_000_000_000_000
    # the threshold is inclusive and a parameter
    assert len(raise_alerts(scored, {"c1"}, names, threshold=-0.4019)) == 2
    assert len(raise_alerts(scored, {"c1", "c3"}, names)) == 2
    with pytest.raises(ValueError, match="lies in"):
        raise_alerts(scored, {"c1"}, names, threshold=-2)


def test_a_headline_naming_two_holdings_alerts_both(frame):
    scored = score_headlines(news("Fraud probe hits Arc Foods and ALDV after deadly fire"), CompanyMatcher(frame))
    assert [a.company_id for a in raise_alerts(scored, {"c1", "c3"}, frame["name"].to_dict())] == ["c3", "c1"]


def test_the_sample_raises_alerts_only_for_held_companies():
    frame = load_companies(SAMPLE_COMPANIES)
    held = set(resolve(load_holdings(SAMPLE_HOLDINGS)["holding"], frame).dropna())
    alerts = raise_alerts(score_headlines(HeadlineFile(SAMPLE_HEADLINES), CompanyMatcher(frame)), held, frame["name"])
    assert [a.company_name for a in alerts] == [
        "Harrowvale Oil & Gas",
        "Gildenbrook Beverages",
        "Saltmire Engineering",
        "Emberlume Networks",
        "Thornwick Rail Systems",
    ]
    assert all(a.compound <= -0.5 for a in alerts)


def test_alerts_are_stored_once_each(frame, tmp_path):
    scored = score_headlines(
        news("Explosion at Aldervale Power plant kills two workers", "Fraud at Arc Foods, CEO arrested"),
        CompanyMatcher(frame),
    )
    alerts = raise_alerts(scored, {"c1", "c3"}, frame["name"].to_dict())
    path = tmp_path / "alerts.sqlite"
    with AlertStore(path) as store:
        store.save(alerts)
        store.save(alerts)  # a second scan of the same news adds nothing
        stored = store.recent()
    assert stored == alerts[::-1]  # newest first
    rows = sqlite3.connect(path).execute("SELECT count(*), min(compound) FROM esg_alerts").fetchone()
    assert rows[0] == 2 and rows[1] == pytest.approx(min(a.compound for a in alerts))


def test_the_store_path_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("QF_ESG_DB", raising=False)
    monkeypatch.delenv("QF_DATA_DIR", raising=False)
    assert db_path() == Path(__file__).resolve().parents[1] / "data" / "esg_alerts.sqlite"
    monkeypatch.setenv("QF_ESG_DB", str(tmp_path / "elsewhere" / "a.db"))
    with AlertStore() as store:
        assert store.path == tmp_path / "elsewhere" / "a.db" and store.path.exists()
