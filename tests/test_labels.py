"""Competitive TP/SL labels: hand-computed cases and a plain reference implementation."""

import numpy as np
from hypothesis import given, settings, strategies as st

from candleflow.config import LabelConfig
from candleflow.labels import HOLD, LONG, SHORT, competitive_labels, one_hot
from candleflow.validate import validate_candles
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
    assert labels_for(bars, same_bar="stop").y[0] == HOLD      # both stopped out
    assert labels_for(bars, same_bar="target").y[0] == HOLD    # both win -> HOLD too
    # only the long's barriers are both inside the bar (the short's TP 98 is not reached)
    bars2 = [(100, 100, 100, 100), (100, 102.5, 98.5, 100), (100, 100, 100, 100), (100, 100, 100, 100)]
    assert labels_for(bars2, same_bar="stop").y[0] == HOLD     # long stopped, short stopped at 101
    assert labels_for(bars2, same_bar="target").y[0] == LONG   # long takes profit first, short stopped


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
@given(seed=st.integers(0, 10_000), horizon=st.integers(1, 8), tp=st.sampled_from([0.5, 1.0, 2.0]),
       sl=st.sampled_from([0.5, 1.0, 3.0]), stop_first=st.booleans())
def test_matches_reference_implementation(seed, horizon, tp, sl, stop_first):
    rng = np.random.default_rng(seed)
    n = 60
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate([[100], c[:-1]])
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n))
    l = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    candles, _ = validate_candles(raw(range(n), o, h, l, c))
    got = competitive_labels(candles, LabelConfig(barrier="percent", tp=tp, sl=sl, horizon=horizon,
                                                  same_bar="stop" if stop_first else "target"))
    assert got.y.tolist() == reference_labels(o, h, l, c, horizon, tp, sl, stop_first)
