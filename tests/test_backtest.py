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


def test_a_fixed_fraction_scales_every_bar_and_keeps_the_trade_return():
    c = candles([FLAT, (100, 102.5, 99.5, 102), FLAT, FLAT, FLAT])
    half = backtest(c, [0], [1], PCT, fill="close", fractions=0.5)
    assert half.trade_returns[0] == pytest.approx(0.02 - 2 * COST)  # per unit of notional, as before
    assert half.bar_returns[:2] == pytest.approx([-0.5 * COST, 0.5 * (0.02 - COST)])
    assert half.equity[-1] == pytest.approx((1 - 0.5 * COST) * (1 + 0.5 * (0.02 - COST)))


def test_volatility_sizing_by_hand():
    """Log returns of +1%, -1%, +1% before the signal bar: the sample standard deviation of the
    last 3 is 0.011547 a bar; annualised on 8,760 hourly bars, 1.0807; target 0.2 -> 0.18507."""
    from candleflow.evaluation.backtest import position_fractions

    closes = [100, 100 * np.exp(0.01), 100, 100 * np.exp(0.01), 100 * np.exp(0.01)]
    c = candles([(x, x, x, x) for x in closes])
    r = np.array([0.01, -0.01, 0.01])
    annual = r.std(ddof=1) * np.sqrt(8760)
    got = position_fractions(c, np.array([2, 3, 4]), "volatility", 1.0, 0.2, 3, 1.0)
    assert got[0] == 0.0  # bar 2 has only 2 returns behind it: no size yet, no trade
    assert got[1] == pytest.approx(0.2 / annual)
    assert got[2] == pytest.approx(min(1.0, 0.2 / (np.array([-0.01, 0.01, 0.0]).std(ddof=1) * np.sqrt(8760))))
    capped = position_fractions(c, np.array([3]), "volatility", 1.0, 50.0, 3, 2.0)
    assert capped[0] == 2.0  # the cap: never more than max_leverage
    assert position_fractions(c, np.array([3]), "fixed", 0.3, 0.2, 3, 1.0)[0] == 0.3


def test_capital_and_the_minimum_order():
    """Capital 1,000 at half its equity a trade: 500 a trade; a 600 minimum skips the trade (and
    says so); after a 2% winner, the next trade is sized on the grown equity."""
    c = candles([FLAT, (100, 102.5, 99.5, 102), (102, 102, 102, 102), (102, 102, 102, 102), (102,) * 4, (102,) * 4])
    skipped = backtest(
        c, [0], [1], PCT, fee=0.0, slippage=0.0, fill="close", fractions=0.5, capital=1000, min_order=600
    )
    assert skipped.entry.size == 0 and skipped.below_minimum == 1 and skipped.equity[-1] == 1.0
    both = backtest(c, [0, 2], [1, 1], PCT, fee=0.0, slippage=0.0, fill="close", fractions=0.5, capital=1000)
    assert both.entry.tolist() == [0, 2]
    assert both.notional.tolist() == pytest.approx([500.0, 1000 * (1 + 0.5 * 0.02) * 0.5])
    perf = performance(both, "1h")
    assert perf["final_capital"] == pytest.approx(1000 * both.equity[-1]) and perf["below_minimum"] == 0


def test_funding_is_charged_for_every_bar_held_through_its_close():
    """Next-open fill: a signal at bar 0 enters at bar 1's open and leaves at bar 3's close
    (horizon): held through the closes of bars 1 and 2, so it pays their funding (0.0002 + 0.0003);
    bar 0 comes before the entry and bar 3's close is the exit. A short receives the same."""
    c = candles([FLAT] * 6)
    funding = np.array([0.001, 0.0002, 0.0003, 0.0005, 0.0, 0.0])
    long = backtest(c, [0], [1], PCT, fee=0.0, slippage=0.0, funding=funding)
    assert long.reason.tolist() == [HORIZON] and long.exit.tolist() == [3]
    assert long.funding_paid[0] == pytest.approx(0.0005) and long.trade_returns[0] == pytest.approx(-0.0005)
    assert long.bar_returns[:4] == pytest.approx([0.0, -0.0002, -0.0003, 0.0])
    short = backtest(c, [0], [-1], PCT, fee=0.0, slippage=0.0, funding=funding)
    assert short.trade_returns[0] == pytest.approx(0.0005) and short.funding_paid[0] == pytest.approx(-0.0005)
    held = buy_and_hold(c, (0, 6), fee=0.0, slippage=0.0, funding=funding)  # held through bars 0..4
    assert held.equity[-1] == pytest.approx(np.prod(1 - funding[:5]))
    with pytest.raises(Exception, match="funding: .* expected one per bar"):
        backtest(c, [0], [1], PCT, funding=funding[:3])


def test_trade_statistics_explain_a_loss_by_its_costs():
    """Two trades, +2% and -1% gross, 0.3% round trip each: gross +1%, costs 0.6%, a cost share
    of 60%; the average win and loss after costs."""
    c = candles([FLAT, (100, 102.5, 99.5, 102), (102,) * 4, (102, 102.5, 100.9, 101), (101,) * 4, (101,) * 4])
    res = backtest(c, [0, 2], [1, 1], PCT, fill="close")
    assert res.gross_returns.tolist() == pytest.approx([0.02, -0.01])
    perf = performance(res, "1h")
    assert perf["average_win"] == pytest.approx(0.02 - 2 * COST)
    assert perf["average_loss"] == pytest.approx(-0.01 - 2 * COST)
    assert perf["costs"] == pytest.approx(4 * COST) and perf["gross_move"] == pytest.approx(0.01)
    assert perf["cost_share"] == pytest.approx(4 * COST / 0.01)
    losing = performance(backtest(c, [2], [1], PCT, fill="close"), "1h")
    assert losing["cost_share"] is None  # a losing gross: costs are not what made it lose
