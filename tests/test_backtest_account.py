"""The backtest's accounting and metrics on sequences worked out by hand, and the accounting identity on
any sequence of fills."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.account import Account, RoundTrip
from backtest.metrics import SECONDS_PER_YEAR, drawdown, summarize
from backtest.orders import BUY, MAKER, SELL, TAKER, Fill

S = 1_000_000_000  # one second in ns


def fill(order_id, ts_s, side, price, qty, fee, slippage, liquidity=TAKER) -> Fill:
    return Fill(order_id, int(ts_s * S), side, price, qty, liquidity, fee, slippage)


def worked_account() -> Account:
    """Costs: $1 per order on its first fill, taker 10 bps, slippage 2 bps.

    1. buy 1 @ 100 (order 1):         fee 1 + 0.1 = 1.1,      slippage 0.02
    2. sell 1 @ 110 (order 2):        fee 1 + 0.11 = 1.11,    slippage 0.022
       round trip long 1: 10 - (1.1 + 0.02) - (1.11 + 0.022) = 7.748
    3. sell 2 @ 105 (order 3):        fee 1 + 0.21 = 1.21,    slippage 0.042
    4. buy 1 @ 107 (order 4, part 1): fee 1 + 0.107 = 1.107, slippage 0.0214
    5. buy 1 @ 109 (order 4, part 2): fee 0.109,              slippage 0.0218
       round trip short 2 (order 3 against order 4: one trade), exit VWAP 108:
       -(107 - 105) - (109 - 105) - (1.21 + 0.042) - (1.107 + 0.0214) - (0.109 + 0.0218) = -8.5112
    """
    account = Account(10_000.0)
    for f in (
        fill(1, 0, BUY, 100.0, 1.0, 1.1, 0.02),
        fill(2, 10, SELL, 110.0, 1.0, 1.11, 0.022),
        fill(3, 20, SELL, 105.0, 2.0, 1.21, 0.042),
        fill(4, 50, BUY, 107.0, 1.0, 1.107, 0.0214),
        fill(4, 60, BUY, 109.0, 1.0, 0.109, 0.0218),
    ):
        account.apply(f)
    return account


def test_round_trips_cash_and_costs_of_a_worked_sequence():
    account = worked_account()
    assert account.position == 0.0
    assert account.round_trips == [
        RoundTrip(BUY, 1.0, 0, 10 * S, 100.0, 110.0, pytest.approx(7.748)),
        RoundTrip(SELL, 2.0, 20 * S, 60 * S, 105.0, 108.0, pytest.approx(-8.5112)),
    ]
    # cash: 10_000 - 100 + 110 + 210 - 107 - 109 = 10_004, less costs 4.7632
    assert account.cash == pytest.approx(9_999.2368)
    assert account.fees == pytest.approx(1.1 + 1.11 + 1.21 + 1.107 + 0.109)  # 4.636
    assert account.slippage == pytest.approx(0.02 + 0.022 + 0.042 + 0.0214 + 0.0218)  # 0.1272
    assert account.turnover == pytest.approx(100 + 110 + 210 + 107 + 109)
    assert account.fills == 5


def test_metrics_of_the_worked_sequence():
    account = worked_account()
    # equity sampled every 10 s, cash + position * mid:
    #   before any fill                       10_000
    #   long 1, cash 9_898.88, mid 110        10_008.88
    #   flat, cash 10_007.748                 10_007.748
    #   short 2, cash 10_216.496, mid 106     10_004.496
    #   short 2, mid 108                      10_000.496
    #   short 1, cash 10_108.3676, mid 108    10_000.3676
    #   flat, cash 9_999.2368                 9_999.2368
    equity_ts = np.arange(7) * 10 * S
    equity = np.array([10_000.0, 10_008.88, 10_007.748, 10_004.496, 10_000.496, 10_000.3676, 9_999.2368])
    position = np.array([0.0, 1.0, 0.0, -2.0, -2.0, -1.0, 0.0])
    m = summarize(account, equity_ts, equity, position, 10_000.0, 10 * S)
    assert m["net_pnl"] == pytest.approx(-0.7632)  # 7.748 - 8.5112
    assert m["gross_pnl"] == pytest.approx(4.0)  # +10 long, -6 short
    assert m["fees"] == pytest.approx(4.636) and m["slippage"] == pytest.approx(0.1272)
    assert m["trades"] == 2 and m["fills"] == 5
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(7.748 / 8.5112)
    assert m["avg_trade_pnl"] == pytest.approx((7.748 - 8.5112) / 2)
    assert m["avg_trade_duration_s"] == pytest.approx((10 + 40) / 2)
    # peak 10_008.88, trough 9_999.2368 at the end
    assert m["max_drawdown"] == pytest.approx(10_008.88 - 9_999.2368)
    assert m["max_drawdown_pct"] == pytest.approx((10_008.88 - 9_999.2368) / 10_008.88 * 100)
    assert m["return_pct"] == pytest.approx(-0.007632)
    assert m["exposure"] == pytest.approx(4 / 7)
    assert m["final_position"] == 0.0
    assert m["annualisation"] == "sqrt(31536000 s / 10 s) from equity marked to mid every 10 s"


def test_sharpe_sortino_and_drawdown_of_a_short_equity_curve():
    equity = np.array([100.0, 110.0, 99.0, 108.9])
    # returns +0.1, -0.1, +0.1: mean 1/30; sample std sqrt(((1/15)^2 * 2 + (2/15)^2) / 2) = sqrt(1/75)
    # so 0.288675 a period; downside deviation sqrt(0.1^2 / 3), so Sortino 1/sqrt(3) a period;
    # one sample a second: sqrt(31_536_000) periods a year
    m = summarize(Account(100.0), np.arange(4) * S, equity, np.array([0.0, 1.0, 1.0, 0.0]), 100.0, S)
    assert m["sharpe"] == pytest.approx((1 / 30) / math.sqrt(1 / 75) * math.sqrt(SECONDS_PER_YEAR))
    assert m["sortino"] == pytest.approx(1 / math.sqrt(3) * math.sqrt(SECONDS_PER_YEAR))
    assert m["max_drawdown"] == pytest.approx(11.0) and m["max_drawdown_pct"] == pytest.approx(10.0)
    assert drawdown(equity) == pytest.approx([0.0, 0.0, 11.0, 1.1])
    assert m["exposure"] == 0.5
    # no trade, no losing trade: the ratios that would divide by zero say None
    assert m["win_rate"] is None and m["profit_factor"] is None and m["avg_trade_pnl"] is None
    flat = summarize(Account(100.0), np.arange(4) * S, np.full(4, 100.0), np.zeros(4), 100.0, S)
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["max_drawdown"] == 0.0


def test_a_winning_sequence_has_no_profit_factor():
    account = Account(1_000.0)
    account.apply(fill(1, 0, BUY, 100.0, 1.0, 0.0, 0.0, MAKER))
    account.apply(fill(2, 1, SELL, 101.0, 1.0, 0.0, 0.0, MAKER))
    m = summarize(account, np.arange(2) * S, np.array([1_000.0, 1_001.0]), np.zeros(2), 1_000.0, S)
    assert m["profit_factor"] is None and m["win_rate"] == 1.0


fills = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.floats(50.0, 150.0),  # price
        st.floats(0.001, 5.0),  # qty
        st.floats(0.0, 5.0),  # fee
        st.floats(0.0, 1.0),  # slippage
        st.integers(0, 3),  # how many orders back to reuse an order id (0: a new order)
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(fills, st.floats(50.0, 150.0))
def test_equity_less_capital_is_gross_pnl_less_costs_and_the_sum_of_trades(sequence, mid):
    account = Account(100_000.0)
    gross_cash = 0.0
    order_id = 0
    for ts, (side, price, qty, fee, slippage, back) in enumerate(sequence):
        order_id = order_id + 1 if back == 0 else max(1, order_id - back)
        account.apply(Fill(order_id, ts, side, price, qty, TAKER, fee, slippage))
        gross_cash -= side * price * qty
    gross = gross_cash + account.position * mid
    equity_pnl = account.equity(mid) - account.capital
    assert equity_pnl == pytest.approx(gross - account.fees - account.slippage, abs=1e-6)
    # every unit is in a closed round trip or still open: together they make the equity's P&L
    realized = sum(rt.pnl for rt in account.round_trips)
    assert realized + account.open_pnl(mid) == pytest.approx(equity_pnl, abs=1e-6)
    assert sum(rt.qty for rt in account.round_trips) * 2 + abs(account.position) == pytest.approx(
        sum(q for _, _, q, _, _, _ in sequence), abs=1e-6
    )
