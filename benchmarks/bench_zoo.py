"""The model zoo: walk-forward evaluation of every family on the same windows, folds and decision
rule, written as a table like Qlib's model benchmarks (family x balanced accuracy, edge over the
best naive baseline with a block-bootstrap 95% CI, Sharpe of the stitched backtest, training s).

Run: python benchmarks/bench_zoo.py [--data embedded|btc] [--folds 6] [--seeds 3]
         [--families lstm,gpt,mlp,lightgbm,linear] [--out docs/zoo-embedded.md] [--shared ../shared]

embedded: the default synthetic market (24,000 hourly bars), the default config.
btc: ../shared/data/binance-vision spot BTCUSDT 1h, 2018-01 .. 2024-12, the default config.
Both keep the default dataset split's test period (test_fraction 0: every window is used by the
walk-forward folds). A study is resumable: rerun the same command to continue after a stop.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from candleflow.config import load_config
from candleflow.studies.walkforward import walkforward

ROOT = Path(__file__).resolve().parents[1]


def config(data: str, shared: Path, runs: Path, extra: list[str], btc_dir: Path | None = None):
    overrides = [f"output.runs_dir={runs}", "training.verbose=0", *extra]
    if data == "btc":
        folder = (
            btc_dir or shared / "data" / "binance-vision" / "data" / "spot" / "monthly" / "klines" / "BTCUSDT" / "1h"
        )
        paths = sorted(str(p) for p in folder.glob("BTCUSDT-1h-20*.zip") if "2018-01" <= p.stem[-7:] <= "2024-12")
        if not paths:
            sys.exit(f"no BTCUSDT 1h files under {folder}")
        overrides += ["source.kind=files", f"source.paths=[{', '.join(paths)}]"]
    return load_config(None, overrides)


def markdown(summary: dict, title: str, seconds: float) -> str:
    from candleflow.models.backend import describe_devices

    lines = [
        f"### {title}",
        "",
        f"{summary['symbol']} {summary['interval']}, {len(summary['folds'])} expanding walk-forward folds x "
        f"{len(summary['seeds'])} seeds, {summary['stitched']['windows']:,} out-of-sample windows "
        f"({summary['stitched']['from'][:10]} .. {summary['stitched']['to'][:10]}); best naive baseline "
        f"balanced accuracy {max(summary['baselines'].values()):.4f}; buy and hold Sharpe "
        f"{summary['buy_and_hold']['sharpe']:.2f}. Block bootstrap: {summary['bootstrap']['block_windows']}-window "
        f"blocks, {summary['bootstrap']['resamples']} resamples. This invocation took {seconds / 60:.1f} min "
        f"(folds done by an earlier one are not retrained) on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}); {describe_devices()}.",
        "",
        "| family | balanced acc (mean ± sd over seeds) | macro F1 | edge vs baseline, pts [95% CI] | "
        "edge vs LightGBM, pts [95% CI] | Sharpe | return | training s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for family, e in summary["table"].items():
        lo, hi = e["edge_over_baseline_ci95"]
        gbm = "-"
        if "edge_over_lightgbm_ci95" in e:
            glo, ghi = e["edge_over_lightgbm_ci95"]
            gbm = f"{e['edge_over_lightgbm'] * 100:+.1f} [{glo * 100:+.1f}, {ghi * 100:+.1f}]"
        lines.append(
            f"| {family} | {e['balanced_accuracy_mean']:.4f} ± {e['balanced_accuracy_std']:.4f} | "
            f"{e['macro_f1_mean']:.4f} | {e['edge_over_baseline'] * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}] | "
            f"{gbm} | {e['sharpe_mean']:.2f} | {e['total_return_mean'] * 100:+.1f}% | {e['training_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["embedded", "btc"], default="embedded")
    ap.add_argument("--folds", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--families", default="lstm,gpt,mlp,lightgbm,linear")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides, key=value")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("CANDLEFLOW_SHARED", ROOT.parent / "shared")))
    ap.add_argument(
        "--btc-dir", type=Path, default=None, help="folder of BTCUSDT-1h-YYYY-MM.zip (default: in --shared)"
    )
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "zoo")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args()
    cfg = config(args.data, args.shared, args.runs, args.set, args.btc_dir)
    families = [f for f in args.families.split(",") if f]
    t0 = time.perf_counter()
    result = walkforward(
        cfg,
        args.folds,
        args.seeds,
        families,
        name=f"{args.data}-{args.folds}x{args.seeds}",
        progress=lambda msg: print(f"[{time.perf_counter() - t0:7.0f}s] {msg}", flush=True),
    )
    seconds = time.perf_counter() - t0
    title = "embedded default market" if args.data == "embedded" else "BTCUSDT 1h, Binance spot 2018-01 .. 2024-12"
    table = markdown(result.summary, title, seconds)
    print(table)
    print(f"folder: {result.folder}")
    if args.out is not None:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
