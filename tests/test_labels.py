"""Competitive TP/SL labels: hand-computed cases and a plain reference implementation."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.config import LabelConfig
from candleflow.data.validate import validate_candles
from candleflow.dataset.labels import HOLD, LONG, SHORT, competitive_labels, one_hot
from conftest import raw

PCT = dict(barrier="percent", tp=2.0, sl=1.0)  # long: TP at +2%, SL at -1%; short: TP -2%, SL +1%


def labels_for(bars, horizon=3, **kw):
    o, h, l, c = zip(*bars)
    candles, _ = validate_candles(raw(range(len(bars)), o, h, l, c))
    return competitive_labels(candles, LabelConfig(horizon=horizon, **(PCT | kw)))


def test_long_take_profit_first():
    # entry 100: bar 1 goes to 102.5 (long TP 102, short SL 101 both up) -> only the long wins
    lab = labels_for([(100, 100, 100, 100), (100, 102.5, 99.5, 102), (102, 102, 102, 102), (102, 102, 102, 102)])
    assert lab.y[0] == LONG
    assert lab.t1[0] == 1  # both trades closed in bar 1


def test_short_take_profit_first():
    lab = labels_for([(100, 100, 100, 100), (100, 100.5, 97.5, 98), (98, 98, 98, 98), (98, 98, 98, 98)])
    assert lab.y[0] == SHORT
    assert lab.t1[0] == 1


def test_neither_reaches_target_is_hold_and_looks_to_horizon():
    lab = labels_for([(100, 100, 100, 100)] + [(100, 100.5, 99.5, 100)] * 3)
    assert lab.y[0] == HOLD
    assert lab.t1[0] == 3


def test_bar_touching_tp_and_sl_uses_same_bar_rule():
    # bar 1 spans 97.5 .. 102.5: long TP (102) and SL (99) in one bar; short likewise.
    bars = [(100, 100, 100, 100), (100, 102.5, 97.5, 100), (100, 100, 100, 100), (100, 100, 100, 100)]
    assert labels_for(bars, same_bar="stop").y[0] == HOLD  # both stopped out
    assert labels_for(bars, same_bar="target").y[0] == HOLD  # both win -> HOLD too
    # only the long's barriers are both inside the bar (the short's TP 98 is not reached)
    bars2 = [(100, 100, 100, 100), (100, 102.5, 98.5, 100), (100, 100, 100, 100), (100, 100, 100, 100)]
    assert labels_for(bars2, same_bar="stop").y[0] == HOLD  # long stopped, short stopped at 101
    assert labels_for(bars2, same_bar="target").y[0] == LONG  # long takes profit first, short stopped


def test_both_win_is_hold_when_tp_below_sl():
    # tp 1% < sl 3%: price goes to 101 (long TP) then 99 (short TP): both won -> HOLD
    bars = [(100, 100, 100, 100), (100, 101.2, 100, 101), (101, 101, 98.8, 99), (99, 99, 99, 99)]
    lab = labels_for(bars, tp=1.0, sl=3.0)
    assert lab.y[0] == HOLD
    assert lab.t1[0] == 2


def test_no_label_where_forward_window_is_incomplete():
    lab = labels_for([(100, 100, 100, 100)] * 6, horizon=3)
    assert list(lab.y[3:]) == [-1, -1, -1]
    assert list(lab.t1[3:]) == [-1, -1, -1]
    assert (lab.y[:3] == HOLD).all()


def test_one_hot_rows():
    oh = one_hot(np.array([0, 2, -1, 1], dtype=np.int8))
    assert oh.dtype == np.float32
    assert oh.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]]


def reference_labels(o, h, l, c, horizon, tp, sl, stop_first):
    """Plain Python: simulate both trades bar by bar."""
    n = len(c)
    y = [-1] * n
    for t in range(n):
        if t + horizon >= n:
            continue
        results = []
        for side in ("long", "short"):
            up = c[t] * (1 + (tp if side == "long" else sl) / 100)
            down = c[t] * (1 - (sl if side == "long" else tp) / 100)
            won = False
            for j in range(t + 1, t + horizon + 1):
                hit_up, hit_down = h[j] >= up, l[j] <= down
                target = hit_up if side == "long" else hit_down
                stop = hit_down if side == "long" else hit_up
                if target and stop:
                    won = not stop_first
                    break
                if target or stop:
                    won = target
                    break
            results.append(won)
        y[t] = LONG if results == [True, False] else SHORT if results == [False, True] else HOLD
    return y


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    horizon=st.integers(1, 8),
    tp=st.sampled_from([0.5, 1.0, 2.0]),
    sl=st.sampled_from([0.5, 1.0, 3.0]),
    stop_first=st.booleans(),
)
def test_matches_reference_implementation(seed, horizon, tp, sl, stop_first):
    rng = np.random.default_rng(seed)
    n = 60
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate([[100], c[:-1]])
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n))
    l = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    candles, _ = validate_candles(raw(range(n), o, h, l, c))
    got = competitive_labels(
        candles,
        LabelConfig(barrier="percent", tp=tp, sl=sl, horizon=horizon, same_bar="stop" if stop_first else "target"),
    )
    assert got.y.tolist() == reference_labels(o, h, l, c, horizon, tp, sl, stop_first)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    horizon=st.integers(1, 80),
    tp=st.sampled_from([0.25, 0.5, 1.0]),
    sl=st.sampled_from([0.5, 1.0, 2.0]),
    same_bar=st.sampled_from(["stop", "target"]),
    ties=st.booleans(),
)
def test_fast_labeler_identical_to_the_simple_scan(seed, horizon, tp, sl, same_bar, ties):
    """Pointer-chain first-passage queries, in parallel chunks, against the plain scan: y and t1,
    volatility barriers, segments with gaps, and (ties) prices on a coarse tick grid so highs
    repeat and bars touch both barriers."""
    from candleflow.dataset.labels import _fine_arrays, barrier_multipliers, jump_pointers
    from label_reference import reference_competitive

    rng = np.random.default_rng(seed)
    n = 3_000
    c = 100 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.004))
    o = np.concatenate([[100.0], c[:-1]])
    h = np.maximum(o, c) * (1 + rng.exponential(0.002, n))
    l = np.minimum(o, c) * (1 - rng.exponential(0.002, n))
    if ties:
        o, h, l, c = (np.round(v * 4) / 4 for v in (o, h, l, c))
        h, l = np.maximum(h, np.maximum(o, c)), np.minimum(l, np.minimum(o, c))
    ts = np.arange(n) + np.where(np.arange(n) >= n // 2, 50, 0)  # a gap: two segments
    candles, _ = validate_candles(raw(ts, o, h, l, c))
    cfg = LabelConfig(tp=tp, sl=sl, horizon=horizon, same_bar=same_bar, volatility_span=12)
    got = competitive_labels(candles, cfg)
    mults = [np.nan_to_num(m, nan=0.0) for m in barrier_multipliers(candles, cfg)]
    seg_stop = candles.segments[candles.segment_id, 1]
    y, t1 = reference_competitive(
        candles.close, candles.high, candles.low, seg_stop, *mults, horizon, same_bar == "stop"
    )
    assert np.array_equal(got.y, y) and np.array_equal(got.t1, t1)
    # both kernels in small chunks: labels whose horizon crosses a chunk boundary stay identical
    from candleflow.dataset.labels import KERNELS

    for kernel in KERNELS.values():
        small = kernel(
            candles.close,
            candles.high,
            candles.low,
            candles.segments[:, 1].copy(),
            *mults,
            horizon,
            same_bar == "stop",
            *_fine_arrays(candles, None),
            97,
        )
        assert np.array_equal(small[0], y) and np.array_equal(small[1], t1)
    nh, nl = jump_pointers(candles.high, candles.low, 97)
    for i in rng.integers(0, n, 50):  # first later bar strictly higher / lower, or the chunk's end
        stop = (i // 97 + 1) * 97
        later = np.flatnonzero(candles.high[i + 1 : stop] > candles.high[i])
        assert nh[i] == (i + 1 + later[0] if later.size else min(stop, n))
        later = np.flatnonzero(candles.low[i + 1 : stop] < candles.low[i])
        assert nl[i] == (i + 1 + later[0] if later.size else min(stop, n))


def _minutes(times_min, o, h, l, c):
    from candleflow.data.validate import RawCandles
    from conftest import T0

    n = len(times_min)
    cols = {
        "open_time": T0 + np.asarray(times_min, dtype=np.int64) * 60_000_000_000,
        "open": np.asarray(o, float),
        "high": np.asarray(h, float),
        "low": np.asarray(l, float),
        "close": np.asarray(c, float),
        "volume": np.ones(n),
    }
    candles, _ = validate_candles(RawCandles(columns=cols, symbol="TEST", source="test", interval="1m"))
    return candles


def test_finer_candles_decide_a_bar_that_touches_both_barriers():
    from candleflow.dataset.targets import make_labels

    # bar 1 reaches 102 and 98: TP (101) and SL (99) of both trades; the minutes inside it go up first
    coarse, _ = validate_candles(
        raw([0, 1, 2], [100, 100, 100], [100.2, 102, 100.2], [99.8, 98, 99.8], [100, 100, 100])
    )
    cfg = LabelConfig(barrier="percent", tp=1.0, sl=1.0, horizon=1, same_bar="stop")
    plain, changed = make_labels(coarse, cfg)
    assert plain.y[0] == HOLD and changed == 0  # both trades stopped: pessimistic
    up_first = _minutes([60, 61, 62], [100, 101.5, 100], [101.5, 101.6, 100.5], [100, 100, 98], [101.5, 100, 98.5])
    fine, changed = make_labels(coarse, cfg, up_first)
    assert fine.y[0] == LONG and changed == 1 and fine.t1[0] == 1
    down_first = _minutes([60, 61], [100, 98.5], [100.2, 102], [98.5, 98.4], [98.5, 101])
    assert make_labels(coarse, cfg, down_first)[0].y[0] == SHORT
    both_in_one_minute = _minutes([60, 61], [100, 100], [102, 100.5], [98, 99.5], [100, 100])
    assert make_labels(coarse, cfg, both_in_one_minute)[0].y[0] == HOLD  # the rule decides again
    tb = LabelConfig(kind="triple_barrier", barrier="percent", tp=1.0, sl=1.0, horizon=1, same_bar="stop")
    assert make_labels(coarse, tb)[0].y[0] == SHORT and make_labels(coarse, tb, up_first)[0].y[0] == LONG


def test_triple_barrier_and_fixed_horizon_by_hand():
    from candleflow.dataset.labels import fixed_horizon_labels, triple_barrier_labels

    c = [100, 100.5, 101.5, 100, 99.5, 98.5, 100, 100.2, 100.1]
    h = [v + 0.1 for v in c]
    lo = [v - 0.1 for v in c]
    candles, _ = validate_candles(raw(range(9), c, np.maximum(c, h), np.minimum(c, lo), c))
    tb = triple_barrier_labels(
        candles, LabelConfig(kind="triple_barrier", barrier="percent", tp=1.0, sl=1.0, horizon=3)
    )
    # t=0: high 101.6 at bar 2 >= 101 -> LONG at 2; t=2: low 98.4 at bar 5 <= 100.485 earlier? bar 3 low 99.9 no,
    # bar 4 low 99.4 no (>= 100.485*?): lower = 101.5*0.99 = 100.485 -> bar 3 low 99.9 <= 100.485 -> SHORT at 3
    assert tb.y[0] == LONG and tb.t1[0] == 2
    assert tb.y[2] == SHORT and tb.t1[2] == 3
    assert tb.y[6] == -1  # the vertical barrier passes the end of data
    # t=5: 98.5 -> upper 99.485: bar 6 high 100.1 -> LONG at 6
    assert tb.y[5] == LONG and tb.t1[5] == 6
    flat = LabelConfig(kind="triple_barrier", barrier="percent", tp=5.0, sl=5.0, horizon=2)
    assert triple_barrier_labels(candles, flat).y[0] == HOLD
    assert triple_barrier_labels(candles, flat.model_copy(update={"vertical": "sign"})).y[0] == LONG
    fh = fixed_horizon_labels(candles, LabelConfig(kind="fixed_horizon", barrier="percent", tp=1.0, horizon=2))
    # 100 -> 101.5 (+1.5%): LONG; 100.5 -> 100 : HOLD; 101.5 -> 99.5 (-2%): SHORT
    assert fh.y[:3].tolist() == [LONG, HOLD, SHORT] and fh.t1[:3].tolist() == [2, 3, 4]
    assert fh.y[7:].tolist() == [-1, -1]


def test_take_profit_floor_number_and_costs_keyword(caplog):
    import logging

    import pytest

    from candleflow.config import load_config
    from candleflow.dataset.labels import take_profit_distances
    from candleflow.dataset.prepare import prepare

    # +1.5% then nothing: a 1% take-profit is hit, a 2% floor makes the long wait until the horizon
    bars = [(100, 100, 100, 100), (100, 101.5, 100, 101.5), (101.5, 101.5, 101.5, 101.5), (101.5,) * 4]
    assert labels_for(bars, horizon=2, tp=1.0, sl=5.0).y[0] == LONG
    assert labels_for(bars, horizon=2, tp=1.0, sl=5.0, min_barrier=0.02).y[0] == HOLD

    cfg = load_config(None, ["labels.min_barrier=costs", "backtest.fee=0.002", "backtest.slippage=0.001"])
    assert cfg.labels.floor == pytest.approx(0.006)  # 2 x (fee + slippage), from the backtest section
    assert load_config(None, ["labels.min_barrier=0.004"]).labels.floor == 0.004
    with pytest.raises(Exception, match="0 <= x < 0.5 or 'costs'"):
        load_config(None, ["labels.min_barrier=0.7"])

    # 1m synthetic bars, horizon 60: the volatility barriers sit below the round trip -> a warning;
    # with the floor at `costs` no take-profit is closer than the round trip and no warning
    base = ["source.interval=1m", "source.n_bars=3000", "labels.horizon=60"]
    with caplog.at_level(logging.WARNING, logger="candleflow"):
        prep = prepare(load_config(None, base))
    assert "below the round trip of 0.300%" in caplog.text
    assert np.nanmedian(take_profit_distances(prep.candles, prep.config.labels)) < 0.003
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="candleflow"):
        floored = prepare(load_config(None, [*base, "labels.min_barrier=costs"]))
    assert "below the round trip" not in caplog.text
    tp = take_profit_distances(floored.candles, floored.config.labels)
    assert np.nanmin(tp) >= 0.003 * (1 - 1e-9)

    # every LONG label now means the price reached entry + the round trip within the horizon
    # (SHORT: entry - it), which the unfloored labels did not guarantee
    def reached(labels, candles, side):
        y, c = labels.y, candles
        out = []
        for t in np.flatnonzero(y == side):
            fwd = slice(t + 1, t + 61)
            out.append(
                c.high[fwd].max() >= c.close[t] * 1.003 if side == LONG else c.low[fwd].min() <= c.close[t] / 1.003
            )
        return np.array(out)

    for side in (LONG, SHORT):
        assert len(reached(floored.labels, floored.candles, side)) > 100
        assert reached(floored.labels, floored.candles, side).all()
        assert not reached(prep.labels, prep.candles, side).all()
