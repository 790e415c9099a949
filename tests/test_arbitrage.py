"""Cross-venue arbitrage on hand-built quotes, with the edges computed by hand."""

from __future__ import annotations

import math

import pytest

from operators.arbitrage import ArbitrageRules, Quote, find_opportunities, markets, rules_with, split_symbol

T0 = 1_723_075_200_000_000_000
FEES = ArbitrageRules({"binance": 1.0, "coinbase": 2.0, "kraken": 3.0})


def quote(instrument, bid, ask, bid_size=1.0, ask_size=1.0, ts=T0):
    return Quote(instrument, ts, bid, bid_size, ask, ask_size)


@pytest.mark.parametrize(
    ("symbol", "pair"),
    [
        ("BTC-USD", ("BTC", "USD")),
        ("XBT/USD", ("XBT", "USD")),
        ("BTCUSDT", ("BTC", "USDT")),
        ("BTCFDUSD", ("BTC", "FDUSD")),  # the longest known quote wins over USD
        ("ETHBTC", ("ETH", "BTC")),
        ("USDT", None),  # nothing left for the base
        ("AAPL", None),
        ("BTC-", None),
        ("A-B-C", None),
    ],
)
def test_symbols_split_into_base_and_quote(symbol, pair):
    assert split_symbol(symbol) == pair


def test_spot_instruments_map_to_a_common_asset_and_futures_to_none():
    rules = ArbitrageRules()
    assert (
        rules.asset("binance:BTCUSDT") == rules.asset("coinbase:BTC-USD") == rules.asset("kraken:XBT/USD") == "BTC/USD"
    )
    assert rules.asset("binance:BTCUSDC") == "BTC/USD"
    assert rules.asset("binance:ethbtc") == "ETH/BTC"
    assert rules.asset("coinbase:SKL-GBP") == "SKL/GBP"
    assert rules.asset("binance_usdm:BTCUSDT") is None  # futures trade at a basis
    assert rules.asset("lobster:AAPL") is None
    assert rules.asset("BTCUSDT") is None


def test_a_bid_above_another_venues_ask_is_an_opportunity_with_hand_computed_edges():
    quotes = [
        quote("binance:BTCUSDT", 60_000.0, 60_001.0, bid_size=1.0, ask_size=0.5, ts=T0 - 3_000_000),
        quote("coinbase:BTC-USD", 60_100.0, 60_101.0, bid_size=0.2, ask_size=0.3, ts=T0 - 250_000_000),
    ]
    [o] = find_opportunities(quotes, T0, FEES)
    assert (o.asset, o.buy_instrument, o.sell_instrument) == ("BTC/USD", "binance:BTCUSDT", "coinbase:BTC-USD")
    assert (o.buy_price, o.sell_price, o.size) == (60_001.0, 60_100.0, 0.2)
    assert o.gross_bps == pytest.approx(1e4 * 99 / 60_001)  # 16.4997 bps
    # per BTC: 60,100 * (1 - 0.0002) - 60,001 * (1 + 0.0001) = 60,087.98 - 60,007.0001 = 80.9799
    assert o.net_bps == pytest.approx(1e4 * 80.9799 / 60_001)  # 13.4964 bps
    assert o.net_profit == pytest.approx(0.2 * 80.9799)
    assert (o.buy_fee_bps, o.sell_fee_bps) == (1.0, 2.0)
    assert (o.buy_quote_age_ms, o.sell_quote_age_ms) == (3.0, 250.0)


def test_the_default_fees_can_turn_the_net_edge_negative():
    quotes = [quote("binance:BTCUSDT", 60_000.0, 60_001.0), quote("coinbase:BTC-USD", 60_100.0, 60_101.0)]
    [o] = find_opportunities(quotes, T0)
    # 60,100 * 0.994 - 60,001 * 1.001 = 59,739.4 - 60,061.001 = -321.601 per BTC at 10 + 60 bps
    assert o.net_bps == pytest.approx(1e4 * -321.601 / 60_001)
    assert o.net_profit == pytest.approx(-321.601)


def test_no_opportunity_without_a_strict_cross():
    quotes = [quote("binance:BTCUSDT", 59_999.0, 60_000.0), quote("coinbase:BTC-USD", 60_000.0, 60_002.0)]
    assert find_opportunities(quotes, T0, FEES) == []


def test_three_venues_give_every_crossing_pair_best_net_first():
    quotes = [
        quote("binance:BTCUSDT", 99.0, 100.0),
        quote("coinbase:BTC-USD", 101.0, 102.0),
        quote("kraken:XBT/USD", 103.0, 104.0),
    ]
    found = [(o.buy_instrument, o.sell_instrument, round(o.net_bps, 2)) for o in find_opportunities(quotes, T0, FEES)]
    assert found == [
        ("binance:BTCUSDT", "kraken:XBT/USD", 295.91),  # 1e4 * (103 * 0.9997 - 100 * 1.0001) / 100
        ("binance:BTCUSDT", "coinbase:BTC-USD", 96.98),  # 1e4 * (101 * 0.9998 - 100 * 1.0001) / 100
        ("coinbase:BTC-USD", "kraken:XBT/USD", 93.01),  # 1e4 * (103 * 0.9997 - 102 * 1.0002) / 102
    ]


def test_instruments_of_one_venue_are_not_arbitraged_against_each_other():
    quotes = [quote("binance:BTCUSDT", 99.0, 100.0), quote("binance:BTCUSDC", 101.0, 102.0)]
    assert find_opportunities(quotes, T0, FEES) == []
    assert [q.instrument for q in markets(quotes, FEES)["BTC/USD"]] == ["binance:BTCUSDC", "binance:BTCUSDT"]


def test_other_assets_and_unusable_quotes_are_left_out():
    crossing = quote("coinbase:BTC-USD", 101.0, 102.0)
    bad = [
        quote("binance:BTCUSDT", None, 100.0),
        quote("binance:BTCUSDT", 99.0, math.nan),
        quote("binance:BTCUSDT", 99.0, 100.0, ask_size=0.0),
        quote("binance:BTCUSDT", 100.0, 100.0),  # crossed or locked on its own venue: a broken book
        quote("binance:ETHUSDT", 1.0, 2.0),  # another asset
        quote("binance_usdm:BTCUSDT", 99.0, 100.0),  # futures
    ]
    for other in bad:
        assert find_opportunities([crossing, other], T0, FEES) == [], other


def test_rules_with_overrides_fees_and_aliases():
    rules = rules_with("coinbase=25, okx=8", "USDT=USDT")
    assert rules.taker_fees_bps == {"binance": 10.0, "coinbase": 25.0, "kraken": 40.0, "okx": 8.0}
    assert rules.asset("binance:BTCUSDT") == "BTC/USDT"  # no longer at par with USD
    assert rules.asset("okx:BTC-USDC") == "BTC/USD"
    quotes = [quote("binance:BTCUSDT", 99.0, 100.0), quote("coinbase:BTC-USD", 101.0, 102.0)]
    assert find_opportunities(quotes, T0, rules) == []
    assert rules_with() == ArbitrageRules()


@pytest.mark.parametrize(
    ("fees", "aliases", "message"),
    [
        ("binance", "", "'binance' is not NAME=VALUE"),
        ("binance=cheap", "", "binance='cheap' is not a number of bps"),
        ("binance=-1", "", "from 0 to 10000"),
        ("binance=nan", "", "from 0 to 10000"),
        ("", "USDT=", "'USDT=' is not NAME=VALUE"),
    ],
)
def test_bad_overrides_say_what_is_wrong(fees, aliases, message):
    with pytest.raises(ValueError, match=message):
        rules_with(fees, aliases)


def test_quotes_older_than_max_age_are_left_out():
    quotes = [
        quote("binance:BTCUSDT", 99.0, 100.0, ts=T0 - 2_000_000),
        quote("coinbase:BTC-USD", 101.0, 102.0, ts=T0 - 5_000_000),
    ]
    assert len(find_opportunities(quotes, T0, FEES, max_age_ms=5.0)) == 1
    assert find_opportunities(quotes, T0, FEES, max_age_ms=4.9) == []
    assert [q.instrument for q in markets(quotes, FEES, T0, 4.9)["BTC/USD"]] == ["binance:BTCUSDT"]
