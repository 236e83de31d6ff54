"""The simple reference for the competitive labeler: a plain scan of both trades over the
horizon, bar by bar. Plain Python; tests and benchmarks wrap it in numba.njit for speed."""

import numpy as np


def first_exit(high, low, start, stop, up, down, long_side, stop_first):
    """(exit bar, won) of one trade over bars start..stop-1; exit -1 when it never exits."""
    for j in range(start, stop):
        hit_up = high[j] >= up
        hit_down = low[j] <= down
        if hit_up or hit_down:
            target = hit_up if long_side else hit_down
            stop_hit = hit_down if long_side else hit_up
            if target and stop_hit:
                return j, not stop_first
            return j, target
    return -1, False


def reference_competitive(
    close, high, low, seg_stop, up_tp, down_sl, down_tp, up_sl, horizon, stop_first, first_exit=first_exit
):
    n = close.shape[0]
    y = np.full(n, -1, dtype=np.int8)
    t1 = np.full(n, -1, dtype=np.int64)
    for t in range(n):
        end = t + horizon + 1
        if end > seg_stop[t] or not (up_tp[t] > 1.0) or not (up_sl[t] > 1.0):
            continue
        c = close[t]
        jl, long_win = first_exit(high, low, t + 1, end, c * up_tp[t], c * down_sl[t], True, stop_first)
        js, short_win = first_exit(high, low, t + 1, end, c * up_sl[t], c * down_tp[t], False, stop_first)
        y[t] = 2 if long_win and not short_win else 0 if short_win and not long_win else 1
        t1[t] = max(jl, js) if jl >= 0 and js >= 0 else end - 1
    return y, t1


def numba_reference():
    """reference_competitive compiled with numba (same code, one core)."""
    import numba

    fe = numba.njit(first_exit)
    ref = numba.njit(reference_competitive)
    return lambda *args: ref(*args, fe)
