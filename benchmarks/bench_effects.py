"""Known effects, measured on real data, to the bar a referee would set: does candleflow find what
is known to be in real candles (volatility is predictable, and seasonal within the day and the
week), does any family beat the strongest simple baseline, and does a control come out null?

Walk-forward studies (5 expanding folds, 3 seeds per family) on the shared BTCUSDT 1h files
(2018-01 .. 2024-12) and the shared SPY daily bars. Every family is scored against the baseline
to beat: the best by validation MSE of persistence, EWMA, HAR, seasonal HAR (hour-of-week or
weekday intercepts), HAR-J, HARQ and rolling HAR, each fitted on its fold's own windows. The
table gives R^2 against each fold's own test mean, the MSE and QLIKE ratios over the baseline to
beat with Diebold-Mariano t-statistics (Newey-West; positive: the family's loss is smaller), the
IC over folds, and whether the forecast is in the model confidence set (10%) on each loss.

The ablation: for LightGBM, ridge and the MLP, bar features alone, the calendar alone, HAR's
terms alone and all of them; the LSTM and the GPT on bar features alone and on all of them.

The control: targets shuffled in blocks of 168 hours (raised to 169, coprime with the week), a
walk-forward study, and beside it persistence's, EWMA's and HAR's IC over 20 shuffle seeds.

    python benchmarks/bench_effects.py                 # every study (67 min on 2 cores, 2026-12-07)
    python benchmarks/bench_effects.py --only btc_vol_all spy_vol_all
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
BARS = ["log_return", "range", "body", "upper_wick", "lower_wick", "volume_ratio", "volatility", "momentum"]
CALENDAR = ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]
HAR_TERMS = ["volatility", "log_rv_week", "log_rv_month"]
LIGHT = ["dataset.window=48", "dataset.train_stride=8", "training.epochs=3", "training.verbose=0"]


def _features(names: list[str]) -> str:
    return f"features.names=[{','.join(dict.fromkeys(names))}]"


BTC_SOURCE = [
    "source.kind=files",
    f"source.paths=[{BTC}/BTCUSDT-1h-20*.zip]",
    "validation.gaps=repair",
    "validation.gap_tolerance=3",
    "labels.horizon=24",
    "labels.kind=volatility",
]
SPY_SOURCE = [
    "source.kind=files",
    f"source.paths=[{SPY}]",
    "labels.horizon=5",
    "labels.estimator=garman_klass",
    "labels.kind=volatility",
]

# name: (what it asks, overrides, families)
STUDIES: dict[str, tuple[str, list[str], list[str]]] = {
    "btc_vol_bars": ("BTC 1h, next 24 h log volatility: bar features", [*BTC_SOURCE, _features(BARS)], TABULAR + DEEP),
    "btc_vol_calendar": (
        "BTC 1h volatility: the calendar alone",
        [*BTC_SOURCE, _features(CALENDAR)],
        TABULAR + ["mlp"],
    ),
    "btc_vol_har": ("BTC 1h volatility: HAR's terms alone", [*BTC_SOURCE, _features(HAR_TERMS)], TABULAR + ["mlp"]),
    "btc_vol_all": (
        "BTC 1h volatility: bars + calendar + HAR's terms",
        [*BTC_SOURCE, _features(BARS + CALENDAR + HAR_TERMS)],
        TABULAR + DEEP,
    ),
    "btc_vol_shuffled": (
        "control: BTC 1h volatility targets shuffled in blocks of 168 (-> 169) hours",
        [*BTC_SOURCE, _features(BARS + CALENDAR + HAR_TERMS), "labels.shuffle_blocks=168"],
        TABULAR,
    ),
    "spy_vol_bars": (
        "SPY daily, next 5 days' log volatility (Garman-Klass): bar features",
        [*SPY_SOURCE, _features(BARS)],
        TABULAR + DEEP,
    ),
    "spy_vol_all": (
        "SPY daily volatility: bars + calendar + HAR's terms",
        [*SPY_SOURCE, _features(BARS + CALENDAR + HAR_TERMS)],
        TABULAR + DEEP,
    ),
}


def run_study(name: str, runs: Path, folds: int, seeds: int) -> tuple[dict, float]:
    _, overrides, families = STUDIES[name]
    cfg = load_config(None, [*LIGHT, *overrides, f"output.runs_dir={runs}"])
    t0 = time.perf_counter()
    result = walkforward(cfg, folds=folds, seeds=seeds, families=families, name=name, resamples=1000)
    return result.summary, time.perf_counter() - t0


def _f(v: float | None, fmt: str = "+.3f") -> str:
    return "-" if v is None else format(v, fmt)


def _ci(c: list[float] | None) -> str:
    return "-" if c is None else f"[{c[0]:+.3f}, {c[1]:+.3f}]"


def _in_set(summary: dict, name: str) -> str:
    """'MSE, QLIKE' where the forecast is in that loss's model confidence set."""
    sets = summary.get("confidence_set", {})
    kept = [loss.upper() for loss, mcs in sets.items() if isinstance(mcs, dict) and name in mcs["included"]]
    return ", ".join(kept) or "no"


def rows(name: str, summary: dict, seconds: float) -> list[str]:
    """Markdown rows: each family's R^2, its losses over the baseline to beat with DM t, its IC
    over folds and its place in the model confidence sets; then every baseline."""
    what = STUDIES[name][0]
    best = summary["best_baseline"]
    out = []
    for family, e in summary["table"].items():
        a = e["against_best"]
        out.append(
            f"| {what} | {family} | {_f(e['r2_mean'], '.4f')} | {_f(a['mse_ratio'], '.3f')} ({_f(a['dm_t_mse'], '+.1f')}) | "
            f"{_f(a.get('qlike_ratio'), '.3f')} ({_f(a.get('dm_t_qlike'), '+.1f')}) | {_f(e['ic_mean'])} {_ci(e['ic_ci95'])} | "
            f"{_in_set(summary, family)} |"
        )
    for b, m in summary["baselines"].items():
        mark = "**" if b == best else ""
        out.append(
            f"| {what} | *{mark}{b}{mark}* | {_f(m['r2'], '.4f')} | mse {_f(m['mse'], '.4f')} | qlike {_f(m.get('qlike'), '.4f')} | "
            f"{_f(m['ic_fold_mean'])} {_ci(m['ic_fold_ci95'])} | {_in_set(summary, b)} |"
        )
    out.append(
        f"| {what} | *(baseline to beat: {best}; study took {seconds / 60:.1f} min, "
        f"{summary['stitched']['windows']:,} windows)* | | | | | |"
    )
    return out


def shuffled_baseline_ics(seeds: int = 20) -> list[str]:
    """Persistence's, EWMA's and HAR's IC on BTC 1h with the targets shuffled (blocks of 168 ->
    169 hours), over `seeds` shuffle seeds: HAR fitted on the first 70% of windows, every IC on the
    last 30%. Under the null each mean is near 0."""
    import numpy as np

    from candleflow.data.load import load_candles
    from candleflow.dataset.targets import CONTEXT, make_labels
    from candleflow.evaluation.baselines import fit_har, har_predict

    cfg = load_config(None, BTC_SOURCE)
    candles, _ = load_candles(cfg.source, cfg.validation)
    ics: dict[str, list[float]] = {"persistence": [], "ewma": [], "har": []}
    for seed in range(seeds):
        labels_cfg = cfg.labels.model_copy(update={"shuffle_blocks": 168, "shuffle_seed": seed})
        lab, _ = make_labels(candles, labels_cfg)
        ok = np.flatnonzero(np.isfinite(lab.y) & np.isfinite(lab.context).all(axis=1))
        cut = ok[int(0.7 * ok.size)]
        tr, te = ok[ok < cut - cfg.labels.horizon], ok[ok >= cut]
        y = lab.y.astype(np.float64)
        forecasts = {
            "persistence": lab.context[te, CONTEXT.index("persistence")],
            "ewma": lab.context[te, CONTEXT.index("ewma")],
            "har": har_predict(fit_har(lab.context[tr], y[tr]), lab.context[te]),
        }
        for k, f in forecasts.items():
            ics[k].append(float(np.corrcoef(y[te], f)[0, 1]))
    return [
        f"| control, {seeds} shuffle seeds | {k} | IC mean {np.mean(v):+.4f}, std {np.std(v, ddof=1):.4f}, "
        f"range [{min(v):+.3f}, {max(v):+.3f}] |"
        for k, v in ics.items()
    ]


def shuffled_studies(seeds: int, runs: Path, folds: int) -> list[str]:
    """The shuffled control as walk-forward studies over `seeds` shuffle seeds (one training seed
    each, LightGBM and ridge): every family's and baseline's mean fold IC per shuffle seed, then
    their mean and spread over the seeds (under the null each mean is near 0)."""
    import numpy as np

    _, overrides, families = STUDIES["btc_vol_shuffled"]
    ics: dict[str, list[float]] = {}
    for seed in range(seeds):
        cfg = load_config(None, [*LIGHT, *overrides, f"labels.shuffle_seed={seed}", f"output.runs_dir={runs}"])
        s = walkforward(cfg, folds=folds, seeds=1, families=families, name=f"shuffled-s{seed}", resamples=200).summary
        for fam, e in s["table"].items():
            ics.setdefault(fam, []).append(np.nan if e["ic_mean"] is None else e["ic_mean"])
        for b, m in s["baselines"].items():
            if m.get("ic_fold_mean") is not None:
                ics.setdefault(b, []).append(m["ic_fold_mean"])
        print(f"shuffle seed {seed}: " + ", ".join(f"{k} {v[-1]:+.3f}" for k, v in ics.items()), flush=True)
    return [
        f"| control, {seeds} shuffle seeds, walk-forward | {k} | mean fold IC over seeds {np.nanmean(v):+.4f}, std "
        f"{np.nanstd(v, ddof=1):.4f}, range [{np.nanmin(v):+.3f}, {np.nanmax(v):+.3f}] |"
        for k, v in ics.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(STUDIES), help="studies to run (default: all)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--runs", type=Path, default=None, help="where the study folders go (default: a temporary folder)")
    ap.add_argument("--shuffle-seeds", type=int, default=20, help="seeds of the baselines' shuffled control (0: skip)")
    ap.add_argument(
        "--shuffle-studies", type=int, default=0, help="also run the shuffled walk-forward study over N shuffle seeds"
    )
    args = ap.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="bench-effects-"))
    lines = [
        "| study | predictor | R^2 (test mean) | MSE ratio (DM t) | QLIKE ratio (DM t) | IC over folds (95% CI) "
        "| in the 10% MCS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    t_all = time.perf_counter()
    for name in args.only or list(STUDIES):
        summary, seconds = run_study(name, runs, args.folds, args.seeds)
        new = rows(name, summary, seconds)
        lines += new
        print("\n".join(new), flush=True)
    if args.shuffle_seeds:
        t0 = time.perf_counter()
        new = shuffled_baseline_ics(args.shuffle_seeds)
        lines += [*new, f"| *(the shuffle seeds took {time.perf_counter() - t0:.1f} s)* | | |"]
        print("\n".join(new), flush=True)
    if args.shuffle_studies:
        t0 = time.perf_counter()
        new = shuffled_studies(args.shuffle_studies, runs, args.folds)
        lines += [*new, f"| *(the shuffled studies took {(time.perf_counter() - t0) / 60:.1f} min)* | | |"]
        print("\n".join(new), flush=True)
    print()
    print("\n".join(lines))
    print(
        f"\n{args.folds} folds x {args.seeds} seeds; all studies took {(time.perf_counter() - t_all) / 60:.1f} min; folders under {runs}"
    )


if __name__ == "__main__":
    main()
