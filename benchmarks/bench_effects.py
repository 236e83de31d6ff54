"""Known effects, measured on real data: does candleflow find what is known to be in real candles
(volatility is predictable, and seasonal within the day and the week) and nothing where nothing
is (direction; targets shuffled in blocks; a synthetic market without a signal)?

Walk-forward studies (5 expanding folds, 3 seeds per family) on the shared BTCUSDT 1h files
(2018-01 .. 2024-12) and the shared SPY daily bars, each family against the quants' baselines
(volatility: persistence, EWMA, HAR-RV; returns: zero, mean, momentum, reversal), with
moving-block bootstrap 95% intervals for the R^2 gain, and for the IC the mean of per-fold ICs
with a t-interval over folds (beside the stitched IC's bootstrap interval over windows). Prints one markdown table (docs/benchmarks.md keeps it)
and the time each study took.

    python benchmarks/bench_effects.py                 # every study (about 40 minutes on 2 cores)
    python benchmarks/bench_effects.py --only btc_vol  # one study
    CANDLEFLOW_SHARED=/path/to/shared python benchmarks/bench_effects.py

The deep families train lighter than a `candleflow run` default so the whole table fits a
coffee break on a laptop: windows of 48 bars, every 8th training window, 3 epochs (the same for
every fold and seed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from candleflow.config import load_config
from candleflow.studies.walkforward import walkforward

SHARED = Path(os.environ.get("CANDLEFLOW_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BTC = SHARED / "data/binance-vision/data/spot/monthly/klines/BTCUSDT/1h"
SPY = SHARED / "data/stocks/SPY-1d.csv"
DEEP = ["mlp", "lstm", "gpt"]
TABULAR = ["lightgbm", "linear"]
CALENDAR = ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]
DEFAULT_FEATURES = ["log_return", "range", "body", "upper_wick", "lower_wick", "volume_ratio", "volatility", "momentum"]
LIGHT = ["dataset.window=48", "dataset.train_stride=8", "training.epochs=3", "training.verbose=0"]


def _features(names: list[str]) -> str:
    return f"features.names=[{','.join(names)}]"


BTC_SOURCE = [
    "source.kind=files",
    f"source.paths=[{BTC}/BTCUSDT-1h-20*.zip]",
    "validation.gaps=repair",
    "validation.gap_tolerance=3",
    "labels.horizon=24",
]
SPY_SOURCE = ["source.kind=files", f"source.paths=[{SPY}]", "labels.horizon=5", "labels.estimator=garman_klass"]
SYNTH_NULL = ["source.signal_strength=0", "labels.horizon=24"]

# name: (what it asks, overrides, families)
STUDIES: dict[str, tuple[str, list[str], list[str]]] = {
    "btc_vol": ("BTC 1h: next 24 h log volatility", [*BTC_SOURCE, "labels.kind=volatility"], TABULAR + DEEP),
    "btc_vol_calendar": (
        "BTC 1h volatility, + hour and weekday inputs",
        [*BTC_SOURCE, "labels.kind=volatility", _features(DEFAULT_FEATURES + CALENDAR)],
        TABULAR + ["mlp"],
    ),
    "btc_vol_har": (
        "BTC 1h volatility, + HAR's weekly and monthly terms and calendar inputs",
        [
            *BTC_SOURCE,
            "labels.kind=volatility",
            _features(DEFAULT_FEATURES + CALENDAR + ["log_rv_week", "log_rv_month"]),
        ],
        TABULAR + ["mlp"],
    ),
    "btc_vol_shuffled": (
        "control: BTC 1h volatility targets shuffled in blocks of a week",
        [*BTC_SOURCE, "labels.kind=volatility", "labels.shuffle_blocks=168"],
        TABULAR,
    ),
    "btc_ret": ("BTC 1h: next 24 h log return", [*BTC_SOURCE, "labels.kind=forward_return"], TABULAR + DEEP),
    "spy_vol": (
        "SPY daily: next 5 days' log volatility (Garman-Klass)",
        [*SPY_SOURCE, "labels.kind=volatility"],
        TABULAR + DEEP,
    ),
    "spy_ret": ("SPY daily: next 5 days' log return", [*SPY_SOURCE, "labels.kind=forward_return"], TABULAR + DEEP),
    "synth_ret_null": (
        "control: synthetic market without a signal, next 24 bars' return",
        [*SYNTH_NULL, "labels.kind=forward_return"],
        TABULAR + DEEP,
    ),
}


def run_study(name: str, runs: Path, folds: int, seeds: int) -> tuple[dict, float]:
    _, overrides, families = STUDIES[name]
    cfg = load_config(None, [*LIGHT, *overrides, f"output.runs_dir={runs}"])
    t0 = time.perf_counter()
    result = walkforward(cfg, folds=folds, seeds=seeds, families=families, name=name, resamples=1000)
    return result.summary, time.perf_counter() - t0


def rows(name: str, summary: dict, seconds: float) -> list[str]:
    """Markdown rows: each family's R^2, its gain over the baseline to beat with the interval,
    its IC with the interval; then the baselines' R^2 and IC."""
    what = STUDIES[name][0]
    best = summary["best_baseline"]
    out = []

    def f(v: float | None, fmt: str = "+.4f") -> str:
        return "-" if v is None else format(v, fmt)

    def ci(c: list[float] | None) -> str:
        return "-" if c is None else f"[{c[0]:+.3f}, {c[1]:+.3f}]"

    for family, e in summary["table"].items():
        out.append(
            f"| {what} | {family} | {f(e['r2_mean'], '.4f')} | {f(e['gain_r2'])} vs {best} | "
            f"{ci(e['gain_r2_ci95'])} | {f(e['ic_mean'])} | {ci(e['ic_ci95'])} | {ci(e['ic_ci95_windows'])} |"
        )
    for b, m in summary["baselines"].items():
        out.append(f"| {what} | *{b}* | {f(m['r2'], '.4f')} | | | {f(m['ic_fold_mean'])} | {ci(m['ic_fold_ci95'])} | |")
    out.append(
        f"| {what} | *(study took {seconds / 60:.1f} min, {summary['stitched']['windows']:,} windows)* | | | | | | |"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(STUDIES), help="studies to run (default: all)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--runs", type=Path, default=None, help="where the study folders go (default: a temporary folder)")
    args = ap.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="bench-effects-"))
    lines = [
        "| study | predictor | R^2 | gain over the baseline to beat | 95% CI | IC (mean over folds) "
        "| IC 95% CI (over folds) | stitched IC 95% CI (over windows) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    t_all = time.perf_counter()
    for name in args.only or list(STUDIES):
        summary, seconds = run_study(name, runs, args.folds, args.seeds)
        new = rows(name, summary, seconds)
        lines += new
        print("\n".join(new), flush=True)
    print()
    print("\n".join(lines))
    print(
        f"\n{args.folds} folds x {args.seeds} seeds; all studies took {(time.perf_counter() - t_all) / 60:.1f} min; folders under {runs}"
    )


if __name__ == "__main__":
    main()
