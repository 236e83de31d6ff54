"""Headless matplotlib figures of a run, each returned as PNG bytes (no pyplot, no global state)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from candleflow.dataset.labels import CLASS_NAMES

COLORS = {
    "model": "#1f77b4",
    "buy_and_hold": "#7f7f7f",
    "equal_weight_long": "#7f7f7f",
    "random_signals": "#ff7f0e",
    "random_ranking": "#ff7f0e",
    "labels": "#2ca02c",
}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def training_curves(history: dict[str, list[float]]) -> bytes:
    """Loss and accuracy per epoch (training and validation) and the learning rate."""
    fig = Figure(figsize=(10, 3.2))
    axes = fig.subplots(1, 3)
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key in zip(axes[:2], ("loss", "accuracy")):
        for name, label in ((key, "train"), (f"val_{key}", "validation")):
            if epochs.size and len(history.get(name, [])) == epochs.size:  # a panel model reports no accuracy
                ax.plot(epochs, history[name], "o-", label=label)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if epochs.size and len(history.get("learning_rate", [])) == epochs.size:
        axes[2].plot(epochs, history["learning_rate"], "o-", color="k")
    axes[2].set_yscale("log")
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("epoch")
    return _png(fig)


def forecast_scatter(y: np.ndarray, forecast: np.ndarray, title: str, most: int = 5000) -> bytes:
    """A regression's forecasts against the realised values (every k-th window, at most `most`)."""
    fig = Figure(figsize=(4, 3.6))
    ax = fig.subplots()
    step = max(1, y.size // most)
    ax.scatter(forecast[::step], y[::step], s=3, alpha=0.4)
    if y.size:
        lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("forecast")
    ax.set_ylabel("realised")
    ax.set_title(title)
    return _png(fig)


def forecast_over_time(
    times: np.ndarray, y: np.ndarray, forecast: np.ndarray, baseline: np.ndarray, names: tuple[str, str], title: str
) -> bytes:
    """The realised target, the model's forecast and the baseline to beat's over the period's
    dates (the last 2,000 windows, so the lines stay readable)."""
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    keep = slice(max(0, y.size - 2000), None)
    when = np.asarray(times, dtype="datetime64[ns]")[keep]
    ax.plot(when, y[keep], color="0.6", lw=0.6, label="realised")
    ax.plot(when, baseline[keep], lw=1.0, label=names[1])
    ax.plot(when, forecast[keep], lw=1.0, label=names[0])
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def cumulative_rank_ic(times: np.ndarray, rank_ic: np.ndarray, title: str) -> bytes:
    """The running sum of a pooled forecast's daily rank IC across the assets: a steady slope is
    a steady ranking skill, a flat stretch none."""
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    ok = np.isfinite(rank_ic)
    ax.plot(np.asarray(times, dtype="datetime64[ns]")[ok], np.cumsum(rank_ic[ok]), lw=1.0)
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_ylabel("cumulative daily rank IC")
    ax.set_title(title)
    fig.autofmt_xdate()
    return _png(fig)


def confusion(cm: list[list[int]], title: str) -> bytes:
    fig = Figure(figsize=(4, 3.6))
    ax = fig.subplots()
    m = np.asarray(cm)
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(3), CLASS_NAMES)
    ax.set_yticks(range(3), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _png(fig)


def equity_and_drawdown(
    times: np.ndarray, curves: dict[str, np.ndarray], period: str = "validation", scale: str = "auto"
) -> bytes:
    """Equity of the model, buy and hold and random signals over the period (the label oracle,
    which knows the future, stays in the table, not here) and their drawdowns. `scale`: log,
    linear, or auto: log where a drawn curve moves by more than a factor of 2."""
    fig = Figure(figsize=(10, 5.5))
    ax, dd = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    t = times.astype("datetime64[ns]")
    for name, eq in curves.items():
        if name == "labels":
            continue
        ax.plot(t, eq, label=name.replace("_", " "), color=COLORS.get(name), lw=1.2)
    ax.axhline(1.0, color="k", lw=0.5)
    _equity_axis(ax, curves, scale)
    ax.legend(loc="upper left")
    ax.set_title(f"equity curves ({period} period)")
    for name in ("model", "buy_and_hold", "equal_weight_long"):  # a series' benchmark, or a panel's
        if name not in curves:
            continue
        eq = curves[name]
        dd.fill_between(
            t, 0, -(1 - eq / np.maximum.accumulate(eq)), color=COLORS.get(name), alpha=0.4, label=name.replace("_", " ")
        )
    dd.set_ylabel("drawdown")
    dd.legend(loc="lower left")
    fig.autofmt_xdate()
    return _png(fig)


def _equity_axis(ax: Any, curves: dict[str, np.ndarray], scale: str) -> None:
    log_scale = equity_log_scale(curves, scale)
    if log_scale:
        ax.set_yscale("log")
    ax.set_ylabel(f"equity ({'log' if log_scale else 'linear'} scale)")


def equity_log_scale(curves: dict[str, np.ndarray], scale: str = "auto") -> bool:
    """Whether equity is drawn on a log scale: asked for, or (auto) some drawn curve spans more
    than a factor of 2 and every one stays positive."""
    drawn = [np.asarray(v, np.float64) for k, v in curves.items() if k != "labels" and np.size(v)]
    if scale != "auto":
        return scale == "log"
    positive = all(float(v.min()) > 0 for v in drawn)
    return positive and any(float(v.max()) / float(v.min()) > 2.0 for v in drawn)


def calibration(rel: dict[str, Any], cov: list[dict[str, Any]]) -> bytes:
    """Reliability diagram, and accuracy / coverage / return against the confidence threshold."""
    fig = Figure(figsize=(10, 3.6))
    a, b = fig.subplots(1, 2)
    bins = rel["bins"]
    a.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    a.plot([r["confidence"] for r in bins], [r["accuracy"] for r in bins], "o-", label="model")
    a.set_xlabel("predicted probability of the top class")
    a.set_ylabel("observed accuracy")
    a.set_title(f"reliability (ECE {rel['ece']:.3f})")
    a.legend()
    th = [r["threshold"] for r in cov]
    b.plot(th, [r["accuracy"] for r in cov], "o-", label="accuracy when trading")
    b.plot(th, [r["coverage"] for r in cov], "s-", label="coverage (share traded)")
    b2 = b.twinx()
    b2.plot(th, [r["total_return"] for r in cov], "^-", color="C2", label="backtest return")
    b2.set_ylabel("total return")
    b.set_xlabel("confidence threshold")
    b.set_title("coverage")
    lines = b.get_legend_handles_labels()
    lines2 = b2.get_legend_handles_labels()
    b.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best", fontsize=8)
    return _png(fig)


def class_balance(split: dict[str, Any]) -> bytes:
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    parts = list(split)
    x = np.arange(len(parts))
    for k, name in enumerate(CLASS_NAMES):
        counts = np.array([split[p]["classes"][name] for p in parts], dtype=float)
        totals = np.array([max(sum(split[p]["classes"].values()), 1) for p in parts], dtype=float)
        ax.bar(x + (k - 1) * 0.27, counts / totals, width=0.27, label=name)
    ax.set_xticks(x, parts)
    ax.set_ylabel("share of windows")
    ax.set_title("class balance per split")
    ax.set_xlim(-0.6, len(parts) - 0.4 + 0.9)  # room on the right for the legend, clear of the bars
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def example_windows(
    segments: np.ndarray,
    window: int,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray,
) -> bytes:
    """A few windows (close, normalised to the last bar) with the bars the label saw: each row of
    `segments` holds the window's closes then the horizon's (NaN past the data's end)."""
    k = len(segments)
    fig = Figure(figsize=(10, 2.6 * ((k + 2) // 3)), layout="constrained")  # titles clear of the row above
    axes = np.atleast_1d(fig.subplots((k + 2) // 3, 3)).ravel()
    for ax, seg, t, p, pr in zip(axes, segments, y_true, y_pred, probs):
        last = seg[window - 1]
        past = seg[:window] / last
        fut = seg[window - 1 :] / last
        fut = fut[np.isfinite(fut)]
        ax.plot(np.arange(-window + 1, 1), past, color="k", lw=1)
        ax.plot(np.arange(0, fut.size), fut, color="C2" if t == 2 else "C3" if t == 0 else "C7", lw=1)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(f"true {CLASS_NAMES[t]}, predicted {CLASS_NAMES[p]} ({pr.max():.2f})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[k:]:
        ax.set_visible(False)
    return _png(fig)


def stitched_equity(times: np.ndarray, curves: dict[str, np.ndarray], title: str, scale: str = "auto") -> bytes:
    """Equity of each family's stitched out-of-sample signals against buy and hold; `scale` as in
    `equity_and_drawdown` (auto: log where a curve moves by more than a factor of 2)."""
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    t = times.astype("datetime64[ns]")
    for name, eq in curves.items():
        style = {"color": "#7f7f7f", "lw": 1.0, "ls": "--"} if name == "buy_and_hold" else {"lw": 1.2}
        ax.plot(t[: eq.size], eq, label=name.replace("_", " "), **style)
    ax.axhline(1.0, color="k", lw=0.5)
    _equity_axis(ax, curves, scale)
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.autofmt_xdate()
    return _png(fig)
