"""Number and time parsing shared by the decoders; instrument keys."""

import pytest

from operators.feeds.common import BadMessage, decimal_seconds_to_ns, iso_to_ns, levels
from quantumflow.events import instrument_key, split_instrument


def test_iso_times_keep_every_digit():
    assert iso_to_ns("2021-04-17T16:43:37.075687Z") == 1618677817_075687000
    assert iso_to_ns("2023-02-09T20:32:50.714964855Z") == 1675974770_714964855
    assert iso_to_ns("1970-01-01T00:00:00Z") == 0


def test_decimal_seconds_are_exact():
    assert decimal_seconds_to_ns("1618677817.0618958") == 1618677817_061895800
    assert decimal_seconds_to_ns("1618678133") == 1618678133_000000000


@pytest.mark.parametrize("text", ["2021-04-17T16:43:37", "yesterday", "2021-13-01T00:00:00Z", 5])
def test_bad_iso_times_are_bad_messages(text):
    with pytest.raises(BadMessage):
        iso_to_ns(text)


@pytest.mark.parametrize("row", [["-1", "1"], ["1", "-1"], ["nan", "1"], ["1", "NaN"], ["inf", "1"], ["1", "1e999"]])
def test_impossible_levels_are_bad_messages(row):
    with pytest.raises(BadMessage):
        levels([row])


def test_instrument_keys():
    assert instrument_key("binance", "BTCUSDT") == "binance:BTCUSDT"
    assert split_instrument("kraken:XBT/CHF") == ("kraken", "XBT/CHF")
    with pytest.raises(ValueError, match="exchange:symbol"):
        split_instrument("BTCUSDT")
