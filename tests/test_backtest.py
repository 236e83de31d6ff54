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
    res = backtest(c, [0], [1], PCT)
    assert res.reason.tolist() == [TP] and res.exit.tolist() == [1]
    assert res.trade_returns[0] == pytest.approx(0.02 - 2 * COST)
    # mark to market: entry cost at bar 0, the exit bar earns 102/100 - 1 minus the exit cost
    assert res.bar_returns[:2] == pytest.approx([-COST, 0.02 - COST])
    assert res.equity[-1] == pytest.approx((1 - COST) * (1.02 - COST))


def test_short_stop_loss():
    c = candles([FLAT, (100, 100.5, 99.5, 100.2), (100.2, 101.5, 100, 101), FLAT, FLAT])
    res = backtest(c, [0], [-1], PCT, fee=0.0, slippage=0.0)
    assert res.reason.tolist() == [SL] and res.exit.tolist() == [2]
    assert res.trade_returns[0] == pytest.approx(-0.01)
    assert res.bar_returns[1] == pytest.approx(-(100.2 / 100 - 1))
    assert res.bar_returns[2] == pytest.approx(-(101 / 100.2 - 1))


def test_overlapping_signals_single_vs_every():
    c = candles([FLAT] * 8)
    single = backtest(c, [0, 1, 3], [1, 1, -1], PCT, fee=0.001, slippage=0.0)
    assert single.entry.tolist() == [0, 3]  # bar 1 is skipped while the first trade runs to bar 3
    assert single.reason.tolist() == [HORIZON, HORIZON]
    every = backtest(c, [0, 1, 3], [1, 1, -1], PCT, fee=0.001, slippage=0.0, mode="every")
    assert every.entry.tolist() == [0, 1, 3] and every.exit.tolist() == [3, 4, 6]
    # each trade has a third of the capital: costs at bar 0 = 1/3 * fee
    assert every.bar_returns[0] == pytest.approx(-0.001 / 3)
    assert every.position[1:4].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert np.all(every.trade_returns == pytest.approx(-0.002))


def test_trade_cut_by_end_of_data():
    c = candles([FLAT, FLAT, FLAT, (100, 100.5, 99.5, 100.5)])
    res = backtest(c, [2], [1], PCT, fee=0.0, slippage=0.0)
    assert res.reason.tolist() == [CUT] and res.exit.tolist() == [3]
    assert res.trade_returns[0] == pytest.approx(0.005)
    assert backtest(c, [3], [1], PCT).entry.size == 0  # no trade opens on the last bar


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
