"""The cross-sectional backtest of a panel model: every `horizon` bars, long the k tickers it
ranks highest and short the k it ranks lowest (equal weights, 1/k a side), with costs per side on
every change of weight; against an equal-weight long book and a random ranking."""

from __future__ import annotations

from typing import Any

import numpy as np


def rebalance_rows(n: int, horizon: int) -> np.ndarray:
    """Positions 0, horizon, 2 x horizon, ... : non-overlapping holding periods of `horizon` bars."""
    return np.arange(0, n, max(horizon, 1))


def long_short_weights(scores: np.ndarray, tradable: np.ndarray, k: int) -> np.ndarray:
    """(n, N) weights: +1/k for the k best-scored tradable tickers, -1/k for the k worst; zero in
    rows with fewer than 2k tradable tickers."""
    n, m = scores.shape
    w = np.zeros((n, m))
    masked = np.where(tradable, scores, np.nan)
    for i in range(n):
        ok = np.flatnonzero(tradable[i])
        if ok.size < 2 * k:
            continue
        order = ok[np.argsort(masked[i, ok], kind="stable")]
        w[i, order[-k:]] = 1.0 / k
        w[i, order[:k]] = -1.0 / k
    return w


def period_returns(weights: np.ndarray, returns: np.ndarray, cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Each holding period's return of a book after costs on every change of weight, and the
    turnover of each rebalance (`returns`: each ticker's return over the period, NaN as 0)."""
    change = np.abs(np.diff(np.vstack([np.zeros(weights.shape[1]), weights]), axis=0)).sum(axis=1)
    return (weights * np.nan_to_num(returns)).sum(axis=1) - cost * change, change


def book_performance(weights: np.ndarray, returns: np.ndarray, cost: float, periods_per_year: float) -> dict[str, Any]:
    """Return, Sharpe, drawdown, turnover and hit rate of a book rebalanced each row; `returns`
    are each ticker's return over the holding period (0 where not traded)."""
    period, change = period_returns(weights, returns, cost)
    equity = np.cumprod(1.0 + period) if period.size else np.ones(1)
    sd = float(period.std()) if period.size > 1 else 0.0
    years = max(period.size / periods_per_year, 1e-12)
    active = (np.abs(weights).sum(axis=1) > 0).sum()
    return {
        "total_return": float(equity[-1] - 1.0),
        "sharpe": float(period.mean() / sd * np.sqrt(periods_per_year)) if sd > 0 else 0.0,
        "max_drawdown": float(np.max(1.0 - equity / np.maximum.accumulate(equity))) if period.size else 0.0,
        "turnover": float(change.sum() / years),
        "hit_rate": float(np.mean(period[np.abs(weights).sum(axis=1) > 0] > 0)) if active else 0.0,
        "periods": int(period.size),
        "active_periods": int(active),
    }


def _books(
    probs: np.ndarray, returns: np.ndarray, tradable: np.ndarray, horizon: int, top_k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The rebalancing rows, their tradable mask and returns, and each book's weights there."""
    rows = rebalance_rows(probs.shape[0], horizon)
    p, r = probs[rows], returns[rows]
    ok = tradable[rows] & np.isfinite(r)
    k = max(1, min(top_k, probs.shape[1] // 2))
    score = p[..., 2] - p[..., 0]
    rng = np.random.default_rng(seed)
    equal = np.where(ok, 1.0, 0.0)
    equal = equal / np.maximum(equal.sum(axis=1, keepdims=True), 1.0)
    books = {
        "model": long_short_weights(score, ok, k),
        "equal_weight_long": equal,
        "random_ranking": long_short_weights(rng.random(score.shape), ok, k),
        "oracle": long_short_weights(np.nan_to_num(r), ok, k),
    }
    return rows, ok, r, books


def cross_sectional_backtest(
    probs: np.ndarray,
    returns: np.ndarray,
    tradable: np.ndarray,
    horizon: int,
    top_k: int,
    cost_per_side: float,
    bars_per_year: float,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """The model's long-short book by P(LONG) - P(SHORT), an equal-weight long book, a random
    ranking and the oracle (ranked by the realised returns; it only bounds what is possible).
    `probs` (n, N, 3), `returns` and `tradable` (n, N) at window ends in time order."""
    _, ok, r, books = _books(probs, returns, tradable, horizon, top_k, seed)
    per_year = bars_per_year / max(horizon, 1)
    return {name: book_performance(w, np.where(ok, r, 0.0), cost_per_side, per_year) for name, w in books.items()}


def book_curves(
    probs: np.ndarray,
    returns: np.ndarray,
    tradable: np.ndarray,
    horizon: int,
    top_k: int,
    cost_per_side: float,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rebalancing positions (into the windows) and each book's equity after each holding
    period, as `cross_sectional_backtest` scores them (what the panel report draws)."""
    rows, ok, r, books = _books(probs, returns, tradable, horizon, top_k, seed)
    curves = {
        name: np.cumprod(1.0 + period_returns(w, np.where(ok, r, 0.0), cost_per_side)[0]) for name, w in books.items()
    }
    return rows, curves


def cross_sectional_ic(
    scores: np.ndarray, returns: np.ndarray, tradable: np.ndarray, min_names: int = 3
) -> dict[str, Any]:
    """Qlib's panel figures of a ranking score (n times, N tickers): at each time with at least
    `min_names` tradable tickers with a forward return, the IC (Pearson) and rank IC (Spearman)
    across tickers, then their mean, standard deviation and ICIR (mean / std) over the times; and
    the mean forward return of the top third of tickers by score minus the bottom third."""
    from scipy.stats import rankdata

    ok = tradable & np.isfinite(returns) & np.isfinite(scores)
    ics, rank_ics, spreads = [], [], []
    for t in range(scores.shape[0]):
        k = np.flatnonzero(ok[t])
        if k.size < min_names:
            continue
        s, r = scores[t, k].astype(np.float64), returns[t, k].astype(np.float64)
        if s.std() < 1e-15 or r.std() < 1e-15:
            continue
        ics.append(float(np.corrcoef(s, r)[0, 1]))
        rank_ics.append(float(np.corrcoef(rankdata(s), rankdata(r))[0, 1]))
        third = max(1, k.size // 3)
        order = np.argsort(s)
        spreads.append(float(r[order[-third:]].mean() - r[order[:third]].mean()))

    def stats(v: list[float]) -> tuple[float | None, float | None, float | None]:
        if not v:
            return None, None, None
        a = np.asarray(v)
        sd = float(a.std(ddof=1)) if a.size > 1 else None
        return float(a.mean()), sd, (float(a.mean() / sd) if sd else None)

    ic, ic_sd, icir = stats(ics)
    ric, ric_sd, ricir = stats(rank_ics)
    return {
        "times": len(ics),
        "ic": ic,
        "ic_std": ic_sd,
        "icir": icir,
        "rank_ic": ric,
        "rank_ic_std": ric_sd,
        "rank_icir": ricir,
        "top_minus_bottom": float(np.mean(spreads)) if spreads else None,
    }
