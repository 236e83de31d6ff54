"""Commands that train, study, apply and publish runs: run, train, walkforward, tune, predict,
report, compare, export. Each parses its options, calls the library and prints."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from candleflow.cli.common import (
    ConfigOpt,
    RunsOpt,
    SetOpt,
    app,
    bar,
    console,
    err_console,
    interruptible,
    log_file_for,
    setup_logging,
    use_backend,
)
from candleflow.cli.present import print_result
from candleflow.cli.present_signals import print_signals


@app.command()
def run(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit", help="then train the production model on every labelled window (training.refit; predict uses it)"
        ),
    ] = False,
) -> None:
    """Train and evaluate a model end to end and save a run folder (embedded default: synthetic market)."""
    from candleflow.config import load_config

    setup_logging(verbose=True)
    cfg = load_config(config, [*(set_ or []), *(["training.refit=true"] if refit else [])])
    use_backend(cfg)
    from candleflow.pipeline import run as run_pipeline

    print_result(interruptible(lambda: run_pipeline(cfg)))


@app.command()
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="continue the interrupted run NAME from its last complete epoch")
    ] = None,
    runs_dir: RunsOpt = Path("runs"),
) -> None:
    """Train like `run`; with --resume NAME, continue a run stopped by Ctrl-C or a crash."""
    from candleflow.config import load_config

    setup_logging(verbose=True)
    if resume is None:
        cfg = load_config(config, set_)
        use_backend(cfg)
        from candleflow.pipeline import run as run_pipeline

        print_result(interruptible(lambda: run_pipeline(cfg)))
        return
    if config is not None or set_:
        raise typer.BadParameter("--resume continues with the run's own config.yaml; drop --config/--set")
    from candleflow.pipeline import resume as resume_pipeline

    print_result(interruptible(lambda: resume_pipeline(resume, runs_dir)))


@app.command()
def walkforward(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    folds: Annotated[int, typer.Option(min=1, max=100, help="walk-forward folds (retrain at each)")] = 6,
    seeds: Annotated[int, typer.Option(min=1, max=20, help="seeds per family (training.seed, +1, ...)")] = 1,
    families: Annotated[
        str, typer.Option(help="comma-separated: lstm, gpt, mlp, lightgbm, linear")
    ] = "lstm,lightgbm,linear",
    rolling: Annotated[bool, typer.Option(help="rolling training periods instead of expanding")] = False,
    name: Annotated[
        str | None, typer.Option(help="study name: runs/walkforward-NAME; the same name continues it")
    ] = None,
    resamples: Annotated[int, typer.Option(min=100, max=100_000, help="block-bootstrap resamples")] = 1000,
    dask: Annotated[
        bool, typer.Option("--dask", help="run the fold tasks on Dask (cluster.workers local processes)")
    ] = False,
    scheduler: Annotated[
        str | None, typer.Option(help="a running Dask scheduler for the fold tasks (implies --dask)")
    ] = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit",
            help="at each fold, train the chosen settings again on training + validation windows before predicting "
            "its test period (training.refit)",
        ),
    ] = False,
    objective: Annotated[
        str | None,
        typer.Option(
            help="classes: balanced_accuracy, sharpe or return: each fold's decision margin chosen again on its "
            "validation period to maximise it (the same --name reads the same folds, nothing retrains); "
            "regression: ic or r2, what the verdict leads with"
        ),
    ] = None,
) -> None:
    """Compare model families out of sample: retrain on each walk-forward fold, stitch the test
    predictions, and give each family's edge with a block-bootstrap 95% confidence interval."""
    from candleflow.config import load_config

    extra = [*([f"cluster.scheduler={scheduler}"] if scheduler else []), *(["training.refit=true"] if refit else [])]
    cfg = load_config(config, [*(set_ or []), *extra])
    setup_logging(log_file=log_file_for(cfg, "walkforward"))
    wanted = [f.strip() for f in families.split(",") if f.strip()]
    use_backend(cfg, wanted[0] if wanted else None)  # one backend per process: the first family's choice
    from candleflow.cli.present import print_study
    from candleflow.studies.walkforward import walkforward as run_walkforward

    with bar("walk-forward", say=False) as progress:  # each fold is also a line off a terminal
        result = interruptible(
            lambda: run_walkforward(
                cfg,
                folds,
                seeds,
                wanted,
                rolling,
                name,
                resamples=resamples,
                progress=_fold_steps(progress),
                dask=dask or scheduler is not None,
                objective=objective,
            )
        )
    print_study(result)


def _fold_steps(progress: Any) -> Callable[[str], None]:
    """The study's progress callback: the bar advances; without a terminal (where the bar is
    silent) each fold is a line with the time spent and about how long is left."""
    task = progress.add_task("folds", total=None)
    t_start = time.perf_counter()

    def step(msg: str) -> None:
        progress.update(task, advance=1, description=msg)
        if not err_console.is_terminal:
            head = msg.split(" ", 1)[0]
            done, total = (int(v) for v in head.split("/")) if "/" in head else (0, 0)
            spent = time.perf_counter() - t_start
            left = f", about {spent / done * (total - done) / 60:.1f} min left" if done and total else ""
            err_console.print(f"walk-forward {msg} ({spent / 60:.1f} min{left})", highlight=False)

    return step


@app.command()
def predict(
    run: Annotated[str, typer.Argument(help="run folder, its name in --runs-dir, or 'latest'")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="a config whose source: replaces the run's (only the source)")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="source.KEY=VALUE: where the new candles come from")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="signals file: .parquet or .csv (a local path)")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="auto (the refit model where the run has one), refit or validated")
    ] = "auto",
    start: Annotated[str | None, typer.Option("--from", help="first window end to score, e.g. 2024-07-01")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last window end to score")] = None,
    latest: Annotated[bool, typer.Option(help="score only the last complete bar and print its decision")] = False,
    runs_dir: RunsOpt = Path("runs"),
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
) -> None:
    """Apply a trained run to candles from any source, with exactly the run's features, windows and
    decision rule: one row per complete window (probabilities, decision)."""
    from candleflow.fs.guard import check_output, local_path
    from candleflow.runs.predict import (
        Predictor,
        latest_rows,
        score_against_labels,
        table_backtest,
        table_notes,
        write_signals,
    )

    setup_logging(log_file=log_file_for(None, "predict"))  # the run's output.log_dir is the training machine's
    target = None if out is None else local_path(out)
    if target is not None:
        check_output(target, overwrite)  # before the work
    predictor = Predictor.from_run(run, runs_dir, model)
    cfg = predictor.source_config(set_, config)
    table, what = predictor.predict_source(cfg, start, end, latest=latest)
    if latest:
        table = latest_rows(table)  # a universe's series: the newest time of each
    if target is not None:
        write_signals(table, target, overwrite)
    regress = predictor.config.labels.regression
    print_signals(table, predictor.name, what, predictor.layout, score_against_labels(table, regress), out, regress)
    console.print(f"scored by {predictor.model_used}", highlight=False)
    bt = None if latest else table_backtest(table)
    if bt is not None:  # the new period where its labels are complete: traded, beside buy and hold
        m, h = bt["model"], bt["buy_and_hold"]
        console.print(
            f"backtest {bt['from']} .. {bt['to']} ({bt['windows']:,} windows with complete labels): model "
            f"{m['total_return'] * 100:+.2f}% (Sharpe {m['sharpe']:.2f}, {m['trades']} trades, max drawdown "
            f"{m['max_drawdown'] * 100:.1f}%) beside buy and hold {h['total_return'] * 100:+.2f}% "
            f"(Sharpe {h['sharpe']:.2f})",
            highlight=False,
        )
    for note in table_notes(table):  # where the asked range is not covered, and where the gaps are
        console.print(f"note: {note}", style="yellow", highlight=False)


@app.command()
def tune(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    name: Annotated[str | None, typer.Option(help="study name: runs/tune-NAME; the same name continues it")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="total trials (default: tune.trials)")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="searched key, e.g. -p 'training.learning_rate={low: 1e-4, high: 1e-2, log: true}' or -p 'model.lstm_units={choices: [[64, 32], [128, 64, 32]]}'; replaces tune.space",
        ),
    ] = None,
    objective: Annotated[
        str | None,
        typer.Option(
            help="balanced_accuracy, sharpe, return (classes), ic or r2 (regression) (default: tune.objective)"
        ),
    ] = None,
) -> None:
    """Search config keys with Optuna, each trial scored by walk-forward validation; writes trials.csv and best.yaml."""
    from candleflow.config import load_config

    cfg = load_config(config, [*(set_ or []), *([f"tune.objective={objective}"] if objective else [])])
    setup_logging(verbose=True, log_file=log_file_for(cfg, "tune"))
    use_backend(cfg)
    from candleflow.studies.tune import parse_search_param, tune_objective
    from candleflow.studies.tune import tune as run_tune

    space = dict(parse_search_param(item) for item in param) if param else None
    result = interruptible(lambda: run_tune(cfg, name, trials, space))
    what = tune_objective(cfg).replace("_", " ")
    t = Table(title=f"tune: {len(result.trials)} trials, best first (mean walk-forward {what})")
    cols = list(result.trials[0])
    for col in cols:
        t.add_column(col, justify="left" if col in ("state",) else "right")
    for row in result.trials[:15]:
        t.add_row(*[str(row[c]) for c in cols])
    console.print(t)
    console.print(
        f"best {result.best_value:.4f} with {result.best_params}; "
        f"config: {result.folder / 'best.yaml'} (train it: candleflow run --config {result.folder / 'best.yaml'})"
    )


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="run folder name, path, or 'latest'")], runs_dir: RunsOpt = Path("runs")
) -> None:
    """(Re)write a run's self-contained HTML report: metrics, backtest, calibration, plots, config."""
    from candleflow.runs.registry import resolve_run
    from candleflow.runs.report import build_report

    setup_logging(log_file=log_file_for(None, "report"))
    out = build_report(resolve_run(run, runs_dir))
    console.print(f"report: {out}")


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="two or more run folder names or paths")],
    runs_dir: RunsOpt = Path("runs"),
    html_out: Annotated[Path | None, typer.Option("--html", help="also write the table as HTML")] = None,
) -> None:
    """Put runs side by side: metrics, backtest and the config keys that differ."""
    from candleflow.fs.atomic import write_text
    from candleflow.runs.compare import compare_html, compare_rows
    from candleflow.runs.page import fmt
    from candleflow.runs.registry import resolve_run

    setup_logging(log_file=log_file_for(None, "compare"))
    dirs = [resolve_run(r, runs_dir) for r in runs]
    names, rows = compare_rows(dirs)
    t = Table(title="runs compared (validation period)")
    t.add_column("")
    for n in names:
        t.add_column(n, justify="right")
    for r in rows:
        t.add_row(*(fmt(c) for c in r))
    console.print(t)
    if html_out is not None:
        write_text(html_out, compare_html(dirs))
        console.print(f"written: {html_out}")


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="run folder name, path or 'latest', or a .keras/.h5 model file")],
    out: Annotated[str | None, typer.Option(help="folder to create, a local path (default: RUN/export-FORMAT)")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="stablehlo (JAX, no TensorFlow needed), tf_saved_model, onnx, openvino")
    ] = "stablehlo",
    allow_legacy_h5: Annotated[
        bool, typer.Option("--allow-legacy-h5", help="load a legacy .h5 file (no safe_mode: trusted files only)")
    ] = False,
    runs_dir: RunsOpt = Path("runs"),
) -> None:
    """Export a run's model (or a model file) for serving, with a serving.json beside it. A run
    exports as a serving bundle: `candleflow predict BUNDLE` applies it to candles."""
    setup_logging(log_file=log_file_for(None, "export"))
    from candleflow.fs.guard import local_path

    dest = None if out is None else local_path(out)
    path = Path(model)
    if path.is_file():
        from candleflow.models.export import export_model  # Keras: only once the input is known to exist
        from candleflow.models.loading import load_model_file

        loaded = load_model_file(path, allow_legacy_h5)
        target = export_model(loaded, dest or path.with_suffix(""), fmt, {"source": str(path)})
        console.print(f"exported {fmt} to {target} (see serving.json)")
        return
    from candleflow.runs.registry import resolve_run

    resolve_run(model, runs_dir)  # a run that is not there: one line before Keras loads
    from candleflow.runs.bundle import export_bundle

    target, used = export_bundle(model, dest, fmt, runs_dir)
    console.print(
        f"exported {used} to {target}: a serving bundle (see serving.json); "
        f"candleflow predict {target} --set source.… --out signals.parquet",
        markup=False,
    )
