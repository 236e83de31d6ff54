"""Backtest cases computed by hand."""

import numpy as np
import pytest

from candleflow.config import LabelConfig
from candleflow.data.validate import validate_candles
from candleflow.evaluation.backtest import CUT, HORIZON, SL, TP, backtest, buy_and_hold, performance
from conftest import raw

COST = 0.001 + 0.0005
PCT = LabelConfig(barrier="percent", tp=2.0, sl=1.0, horizon=3)


def candles(bars):
    o, h, l, c = zip(*bars)
    return validate_candles(raw(range(len(bars)), o, h, l, c))[0]


FLAT = (100, 100.2, 99.8, 100)


def test_long_take_profit():
    c = candles([FLAT, (100, 102.5, 99.5, 102), FLAT, FLAT, FLAT])
    res = backtest(c, [0], [1], PCT, fill="close")
    assert res.reason.tolist() == [TP] and res.exit.tolist() == [1]
    assert res.trade_returns[0] == pytest.approx(0.02 - 2 * COST)
    # mark to market: entry cost at bar 0, the exit bar earns 102/100 - 1 minus the exit cost
    assert res.bar_returns[:2] == pytest.approx([-COST, 0.02 - COST])
    assert res.equity[-1] == pytest.approx((1 - COST) * (1.02 - COST))


def test_short_stop_loss():
    c = candles([FLAT, (100, 100.5, 99.5, 100.2), (100.2, 101.5, 100, 101), FLAT, FLAT])
    res = backtest(c, [0], [-1], PCT, fee=0.0, slippage=0.0, fill="close")
    assert res.reason.tolist() == [SL] and res.exit.tolist() == [2]
    assert res.trade_returns[0] == pytest.approx(-0.01)
    assert res.bar_returns[1] == pytest.approx(-(100.2 / 100 - 1))
    assert res.bar_returns[2] == pytest.approx(-(101 / 100.2 - 1))


def test_overlapping_signals_single_vs_every():
    c = candles([FLAT] * 8)
    single = backtest(c, [0, 1, 3], [1, 1, -1], PCT, fee=0.001, slippage=0.0, fill="close")
    assert single.entry.tolist() == [0, 3]  # bar 1 is skipped while the first trade runs to bar 3
    assert single.reason.tolist() == [HORIZON, HORIZON]
    every = backtest(c, [0, 1, 3], [1, 1, -1], PCT, fee=0.001, slippage=0.0, mode="every", fill="close")
    assert every.entry.tolist() == [0, 1, 3] and every.exit.tolist() == [3, 4, 6]
    # each trade has a third of the capital: costs at bar 0 = 1/3 * fee
    assert every.bar_returns[0] == pytest.approx(-0.001 / 3)
    assert every.position[1:4].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert np.all(every.trade_returns == pytest.approx(-0.002))


def test_trade_cut_by_end_of_data():
    c = candles([FLAT, FLAT, FLAT, (100, 100.5, 99.5, 100.5)])
    res = backtest(c, [2], [1], PCT, fee=0.0, slippage=0.0, fill="close")
    assert res.reason.tolist() == [CUT] and res.exit.tolist() == [3]
    assert res.trade_returns[0] == pytest.approx(0.005)
    assert backtest(c, [3], [1], PCT, fill="close").entry.size == 0  # no trade opens on the last bar


def test_performance_and_buy_and_hold():
    c = candles([FLAT, (100, 102.5, 99.5, 102), FLAT, FLAT, FLAT])
    res = backtest(c, [0], [1], PCT, fee=0.0, slippage=0.0, span=(0, 5))
    perf = performance(res, "1h")
    assert perf["total_return"] == pytest.approx(0.02) and perf["trades"] == 1 and perf["hit_rate"] == 1.0
    assert perf["exposure"] == pytest.approx(1 / 5) and perf["max_drawdown"] == 0.0
    assert perf["exits"]["take_profit"] == 1
    bh = buy_and_hold(c, (0, 5), fee=0.0, slippage=0.0)
    assert bh.equity[-1] == pytest.approx(1.0) and bh.equity[1] == pytest.approx(1.02)
    assert performance(bh, "1h")["max_drawdown"] == pytest.approx(1 - 100 / 102)


def test_next_open_fills_by_hand():
    """The default fill: a signal at bar 0's close enters at bar 1's open (101), barriers from that
    price (TP 103.02, SL 99.99), bar 1's own high and low count; marked to market from the open."""
    c = candles([FLAT, (101, 101.5, 100.5, 101.2), (101.2, 103.5, 101, 103), FLAT, FLAT])
    res = backtest(c, [0], [1], PCT)
    assert res.entry.tolist() == [1] and res.exit.tolist() == [2] and res.reason.tolist() == [TP]
    assert res.trade_returns[0] == pytest.approx(0.02 - 2 * COST)
    assert res.bar_returns[0] == 0.0  # nothing happens at the signal bar
    assert res.bar_returns[1] == pytest.approx(-COST + (101.2 / 101 - 1))
    assert res.bar_returns[2] == pytest.approx(101 * 1.02 / 101.2 - 1 - COST)
    # a target hit inside the entry bar (a short from 100: TP at 98): exits there
    c2 = candles([FLAT, (100, 100.2, 97.5, 98.2), FLAT, FLAT, FLAT])
    short = backtest(c2, [0], [-1], PCT, fee=0.0, slippage=0.0)
    assert short.reason.tolist() == [TP] and short.exit.tolist() == [1]  # short TP at 98 inside bar 1
    assert short.trade_returns[0] == pytest.approx(0.02)
    # single position: a signal whose next bar is still inside the running trade is skipped
    flat = candles([FLAT] * 9)
    one = backtest(flat, [0, 2, 3], [1, 1, 1], PCT, fee=0.0, slippage=0.0)
    assert one.entry.tolist() == [1, 4] and one.exit.tolist() == [3, 6]
    assert backtest(flat, [8], [1], PCT).entry.size == 0  # no next bar: no trade
