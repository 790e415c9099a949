"""What a user of the query API meets: times as ISO 8601 or nanoseconds, horizons in the models' order and a 422
for one an instrument has none of, and /health saying when the stored data is stale. On small stores written
here, with hand-computed times."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import given
from hypothesis import strategies as st
from test_api import SETTINGS, client
from test_store_questdb import FakePG

from api.horizons import StoredHorizons
from api.routes.operations import age_text, freshness
from api.settings import ApiSettings
from api.times import to_ns
from quantumflow.features import FEATURE_NAMES
from quantumflow.horizons import horizon_order
from store import open_store
from store.questdb import QuestDBReader

DAY_NS = 86_400 * 10**9
AUG9 = 1_723_161_600 * 10**9  # 2024-08-09T00:00:00Z: 2024-08-08T00:00:00Z (1_723_075_200 s) plus a day
ETH, BTC, IDLE = "binance:ETHUSDT", "binance:BTCUSDT", "kraken:XBT/USD"
HORIZONS = ["10", "100", "10s", "1s", "50"]  # as a store sorts them, by name
MODEL_ORDER = ["10", "50", "100", "1s", "10s"]


# -- times -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-08-09T00:00:00Z", AUG9),
        ("2024-08-09T00:00:00z", AUG9),
        ("2024-08-09", AUG9),  # midnight, UTC
        ("2024-08-09T00:00", AUG9),  # no zone: UTC
        ("2024-08-09 00:00:00", AUG9),
        ("2024-08-08T19:00:00-05:00", AUG9),
        ("2024-08-09T02:00:00.123456789+02:00", AUG9 + 123_456_789),
        ("2024-08-09T02:00:00.123456789 02:00", AUG9 + 123_456_789),  # the offset's + decoded to a space
        ("2024-08-09T00:00:00.5+0200", AUG9 - 7_200 * 10**9 + 500_000_000),
        ("2024-08-09T00:00:00,25+02", AUG9 - 7_200 * 10**9 + 250_000_000),
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("1723161600000000000", AUG9),
        (" 1723161600000000000 ", AUG9),
        (AUG9, AUG9),
        ("0", 0),
    ],
)
def test_times_read_exactly(text, ns):
    assert datetime.fromtimestamp(AUG9 // 10**9, UTC) == datetime(2024, 8, 9, tzinfo=UTC)
    assert to_ns(text) == ns


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2262, 1, 1), timezones=st.timezones()))
def test_an_iso_time_is_its_instant_to_the_microsecond(moment):
    expected = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1_000
    assert to_ns(moment.isoformat()) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("yesterday", "not a time: expected nanoseconds since the epoch (an integer) or ISO 8601"),
        ("2024-08-09T00:00:00.1234567891Z", "not a time"),  # ten decimals
        ("2024-08-09T00:00:00 UTC", "not a time"),
        ("2024-13-01", "not a time: month must be in 1..12"),
        ("2024-08-09T25:00", "not a time: hour must be in 0..23"),
        ("2024-08-09T00:00:00+24:00", "the UTC offset +24:00 is out of range"),
        ("-1", "the time must lie from 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "the time must lie from 1970-01-01T00:00:00Z"),
        ("2262-04-12", "to 2262-04-11"),
        (str(2**63), "to 2262-04-11"),
        ("", "not a time"),
    ],
)
def test_a_bad_time_says_why(text, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        to_ns(text)


# -- a small store -----------------------------------------------------------------------------------------------


def features_row(instrument: str, ts: int, seq: int) -> tuple:
    return (instrument, ts, seq, ts - 1_000, seq, *(float(seq),) * len(FEATURE_NAMES))


def prediction_row(instrument: str, ts: int, seq: int, horizon: str) -> tuple:
    """Not matured yet: label, return_bps and matured_ts null."""
    models, weights = json.dumps({"deeplob": [0.2, 0.5, 0.3]}), json.dumps({"deeplob": 1.0})
    return (instrument, ts, seq, horizon, ts - 1_000, 0.2, 0.5, 0.3, 0, 0.5, models, weights, None, None, None)


def trade_row(instrument: str, ts: int, seq: int) -> tuple:
    return (instrument, ts, seq, ts - 1_000, str(seq), 60_000.0, 0.1, 1)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    """ETH: feature rows a second apart from 2024-08-09T00:00:00Z, predictions of five horizons on the even ones
    and of 500ms too on the first; IDLE: feature rows only, no predictions."""
    url = f"sqlite:///{tmp_path_factory.mktemp('queries') / 'store.db'}"
    with open_store(url).writer() as writer:
        writer.write("features", [features_row(ETH, AUG9 + k * 10**9, k) for k in range(10)])
        writer.write("features", [features_row(IDLE, AUG9, 0)])
        rows = [prediction_row(ETH, AUG9 + k * 10**9, k, h) for k in range(0, 10, 2) for h in HORIZONS]
        rows.append(prediction_row(ETH, AUG9, 0, "500ms"))
        writer.write("predictions", rows)
    return url


@pytest.fixture(scope="module")
def http(store_url):
    with client(replace(SETTINGS, store_url=store_url)) as http:
        yield http


def problem(answer) -> tuple[list[str], str]:
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    return error["loc"], error["msg"]


def test_a_range_in_iso_8601_is_the_same_range_in_nanoseconds(http):
    path = f"/v1/features/{ETH}"
    by_ns = http.get(path, params={"start": AUG9 + 2 * 10**9, "end": AUG9 + 5 * 10**9, "features": "mid"})
    by_iso = http.get(
        path, params={"start": "2024-08-09T04:00:02+04:00", "end": "2024-08-09T00:00:05Z", "features": "mid"}
    )
    assert by_ns.status_code == by_iso.status_code == 200
    assert [row["seq"] for row in by_iso.json()["rows"]] == [2, 3, 4]
    assert by_iso.json() == by_ns.json()
    nanos = http.get(path, params={"start": "2024-08-09T00:00:00.999999999Z", "end": "2024-08-09T00:00:01.000000001"})
    assert [row["seq"] for row in nanos.json()["rows"]] == [1]
    # the URL as typed in a shell, the offset's + unescaped: it arrives as a space
    typed = http.get(f"{path}?start=2024-08-09T02:00:09+02:00")
    assert [row["seq"] for row in typed.json()["rows"]] == [9]


def test_predictions_take_iso_times_too(http):
    answer = http.get(f"/v1/predictions/{ETH}", params={"start": "2024-08-09T00:00:08Z", "horizon": "1s"})
    assert [(row["ts"], row["horizon"]) for row in answer.json()["rows"]] == [(AUG9 + 8 * 10**9, "1s")]


def test_a_bad_time_is_a_422_saying_what_is_accepted(http):
    loc, message = problem(http.get(f"/v1/features/{ETH}", params={"start": "last tuesday"}))
    assert loc == ["query", "start"]
    assert message.startswith("not a time: expected nanoseconds since the epoch (an integer) or ISO 8601 such as")
    loc, message = problem(http.get(f"/v1/predictions/{ETH}", params={"end": "1960-01-01"}))
    assert loc == ["query", "end"] and message.startswith("the time must lie from 1970-01-01T00:00:00Z")
    loc, message = problem(http.get(f"/v1/predictions/{ETH}", params={"start": "2024-08-09", "end": AUG9}))
    assert message == f"the time range is empty: start ({AUG9}) must be before end ({AUG9})"


def test_the_schema_documents_both_forms_of_time(http):
    spec = http.get("/openapi.json").json()
    [start] = [p for p in spec["paths"]["/v1/features/{instrument}"]["get"]["parameters"] if p["name"] == "start"]
    assert {"type": "string", "format": "date-time"} in start["schema"]["anyOf"]
    assert "ISO 8601" in start["description"]
    assert start["examples"]["iso"]["value"] == "2024-08-09T00:00:00Z"


# -- horizons ------------------------------------------------------------------------------------------------------


def test_horizons_come_in_the_models_order():
    assert sorted(HORIZONS, key=horizon_order) == MODEL_ORDER
    assert sorted(["1s", "500ms", "2", "nope", "1000"], key=horizon_order) == ["2", "1000", "500ms", "1s", "nope"]


def test_latest_predictions_are_in_the_models_order(http):
    latest = http.get(f"/v1/predictions/{ETH}/latest").json()["predictions"]
    assert [p["horizon"] for p in latest] == MODEL_ORDER and {p["ts"] for p in latest} == {AUG9 + 8 * 10**9}
    chosen = http.get(f"/v1/predictions/{ETH}/latest", params={"horizon": ["1s", "100", "10"]}).json()
    assert [p["horizon"] for p in chosen["predictions"]] == ["10", "100", "1s"]


def test_a_range_gives_each_events_horizons_in_the_models_order(http):
    rows = http.get(f"/v1/predictions/{ETH}", params={"start": AUG9 + 2 * 10**9, "end": AUG9 + 5 * 10**9}).json()
    assert [(row["seq"], row["horizon"]) for row in rows["rows"]] == [(2, h) for h in MODEL_ORDER] + [
        (4, h) for h in MODEL_ORDER
    ]


def test_a_horizon_without_predictions_is_a_422_naming_those_there_are(http):
    for path in (f"/v1/predictions/{ETH}/latest", f"/v1/predictions/{ETH}"):
        loc, message = problem(http.get(path, params={"horizon": ["10", "7", "2h"]}))
        assert loc == ["query", "horizon"]
        assert message == f"no predictions of horizon 7, 2h for {ETH}; its horizons are 10, 50, 100, 500ms, 1s, 10s"


def test_an_older_horizon_is_still_served(http):
    """500ms is only on the first event: not among the latest event's horizons, yet stored."""
    latest = http.get(f"/v1/predictions/{ETH}/latest", params={"horizon": "500ms"}).json()["predictions"]
    assert [(p["ts"], p["horizon"]) for p in latest] == [(AUG9, "500ms")]
    later = http.get(f"/v1/predictions/{ETH}", params={"start": AUG9 + 1, "horizon": "500ms"})
    assert later.status_code == 200 and later.json()["rows"] == []


def test_no_predictions_yet_or_no_such_instrument_are_not_a_horizon_mistake(http):
    idle = http.get(f"/v1/predictions/{IDLE}/latest", params={"horizon": "7"})
    assert idle.status_code == 200 and idle.json()["predictions"] == []
    assert http.get(f"/v1/predictions/{IDLE}", params={"horizon": "7"}).json()["rows"] == []
    unknown = http.get("/v1/predictions/nowhere:X/latest", params={"horizon": "7"})
    assert unknown.status_code == 404 and "unknown instrument 'nowhere:X'" in unknown.json()["detail"]


class CountingReader:
    """A reader with the two queries StoredHorizons makes, counting the expensive one."""

    def __init__(self, stored: dict[str, list[str]]):
        self.stored = stored
        self.reads = 0

    def horizons(self, instrument):
        self.reads += 1
        return sorted(self.stored.get(instrument, []))

    def latest_predictions(self, instrument):
        return [{"horizon": h} for h in self.stored.get(instrument, [])[:1]]


def test_stored_horizons_are_read_only_when_needed_and_kept_a_while():
    now = [0.0]
    known = StoredHorizons(keep_s=10, clock=lambda: now[0])
    reader = CountingReader({ETH: ["1s", "10"]})
    known.check(reader, ETH, ["1s"], {"1s"})  # found by the query itself
    known.check(reader, ETH, ["1s"], set())  # among the latest event's
    assert reader.reads == 0
    known.check(reader, ETH, ["10"], set())
    known.check(reader, ETH, ["10"], set())
    now[0] = 9.9
    with pytest.raises(RequestValidationError) as refused:
        known.check(reader, ETH, ["7"], set())
    assert refused.value.errors()[0]["msg"] == f"no predictions of horizon 7 for {ETH}; its horizons are 10, 1s"
    assert reader.reads == 1
    now[0] = 10.0
    known.check(reader, ETH, ["10"], set())
    assert reader.reads == 2
    for _ in range(3):  # an instrument without predictions is not kept: the cache holds only real ones
        known.check(reader, "nowhere:X", ["7"], set())
    assert reader.reads == 5


def test_both_stores_read_the_distinct_horizons(store_url):
    with open_store(store_url).reader() as reader:
        assert reader.horizons(ETH) == ["10", "100", "10s", "1s", "50", "500ms"]
        assert reader.horizons(IDLE) == []
    pg = FakePG({"SELECT DISTINCT horizon": [("1s",), ("10",)]})
    assert QuestDBReader(pg).horizons(ETH) == ["10", "1s"]
    assert pg.queries() == [("SELECT DISTINCT horizon FROM predictions WHERE instrument = %s", (ETH,))]


# -- health --------------------------------------------------------------------------------------------------------


def test_freshness_names_the_stale_instruments_and_their_age():
    now = AUG9 + 730 * DAY_NS
    last = {BTC: AUG9, ETH: now - 5 * 10**9, IDLE: now - 61 * 10**9}
    answer = freshness(last, now, 60.0)
    assert answer["status"] == "degraded"
    assert answer["detail"] == (
        "no new events for over 60 s (QF_API_STALE_AFTER_S): "
        f"{BTC} (last event 730 days ago), {IDLE} (last event 61 s ago)"
    )
    assert [(i["instrument"], i["age_s"], i["stale"]) for i in answer["instruments"]] == [
        (BTC, 730 * 86_400.0, True),
        (ETH, 5.0, False),
        (IDLE, 61.0, True),
    ]
    assert freshness(last, now, 1e9)["status"] == "ok" and freshness(last, now, None)["detail"] is None
    assert freshness({}, now, 60.0) == {"status": "degraded", "detail": "no events in the store yet", "instruments": []}
    assert freshness({}, now, None)["status"] == "ok"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (119, "119 s"), (120, "2 min"), (7_199, "120 min"), (7_200, "2 h"), (63_072_000, "730 days")],
)
def test_ages_as_people_read_them(seconds, text):
    assert age_text(seconds) == text


def test_health_is_degraded_with_stale_data_and_ok_when_fresh(tmp_path):
    url = f"sqlite:///{tmp_path / 'health.db'}"
    now = time.time_ns()
    with open_store(url).writer() as writer:
        writer.write("features", [features_row(ETH, now, 1)])
        writer.write("trades", [trade_row(BTC, now - 2 * 365 * DAY_NS, 1)])
    with client(replace(SETTINGS, store_url=url)) as http:
        answer = http.get("/health")
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "degraded"
        assert re.fullmatch(
            rf"no new events for over 60 s \(QF_API_STALE_AFTER_S\): {BTC} \(last event 73\d days ago\)", body["detail"]
        )
        assert {i["instrument"]: i["stale"] for i in body["instruments"]} == {BTC: True, ETH: False}
    with client(replace(SETTINGS, store_url=url, stale_after_s=None)) as http:
        body = http.get("/health").json()
        assert (body["status"], body["detail"]) == ("ok", None)
        assert not any(i["stale"] for i in body["instruments"])


def test_health_of_an_empty_store_says_there_is_no_data_yet(tmp_path):
    with client(replace(SETTINGS, store_url=f"sqlite:///{tmp_path / 'empty.db'}")) as http:
        answer = http.get("/health")
        assert answer.status_code == 200
        assert answer.json()["status"] == "degraded" and answer.json()["detail"] == "no events in the store yet"


@pytest.mark.parametrize(
    ("text", "seconds"), [("", 60.0), ("30", 30.0), ("0.5", 0.5), ("off", None), ("0", None), ("OFF", None)]
)
def test_the_stale_age_setting(text, seconds):
    assert ApiSettings.from_env({"QF_API_STALE_AFTER_S": text}).stale_after_s == seconds


@pytest.mark.parametrize("text", ["-1", "soon", "nan", "inf"])
def test_a_bad_stale_age_is_an_error_naming_the_variable(text):
    with pytest.raises(ValueError, match=re.escape(f"QF_API_STALE_AFTER_S={text!r}: expected a number of seconds")):
        ApiSettings.from_env({"QF_API_STALE_AFTER_S": text})
