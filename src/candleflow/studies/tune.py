"""`candleflow tune`: an Optuna study over config keys, each trial scored by walk-forward
validation (expanding training periods, purged), persisted in SQLite so it can be stopped and
continued; the results table and the best config are written beside it."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from candleflow.config import RunConfig, SearchParam, apply_override, validate_config
from candleflow.dataset.prepare import PreparedData, prepare
from candleflow.dataset.split import Split, walk_forward_by_time, walk_forward_folds
from candleflow.errors import ConfigError
from candleflow.fs.atomic import write_json, write_text
from candleflow.models.fitting import model_and_loader, train_and_score

log = logging.getLogger("candleflow")
# config sections that change the prepared data (windows, labels): trials that differ only in
# the other sections share one prepared dataset
DATA_SECTIONS = ("source", "validation", "features", "labels", "dataset", "images")


@dataclass
class TuneResult:
    folder: Path
    best_value: float
    best_params: dict[str, Any]
    trials: list[dict[str, Any]]


def apply_params(cfg: RunConfig, params: dict[str, Any]) -> RunConfig:
    """`cfg` with dotted keys set to values; an unknown key or bad value is one line naming it."""
    data = cfg.model_dump(mode="json")
    for key, value in params.items():
        apply_override(data, f"{key}={json.dumps(value)}")
    return validate_config(data)


def suggest(trial, key: str, spec: SearchParam) -> Any:
    """Draw one value: choices by index (any YAML value), integers on a grid, floats in a range."""
    if spec.choices is not None:
        labels = [json.dumps(c) for c in spec.choices]
        return json.loads(trial.suggest_categorical(key, labels))
    if _is_int_range(spec):
        return trial.suggest_int(key, spec.low, spec.high, step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(key, spec.low, spec.high, log=spec.log, step=spec.step)


def tune(
    cfg: RunConfig, name: str | None = None, trials: int | None = None, space: dict[str, SearchParam] | None = None
) -> TuneResult:
    """Run (or continue) the study `name` in runs_dir/tune-NAME until it holds `trials` finished
    trials; maximise the mean of `tune.objective` over the walk-forward folds (the decisions'
    balanced accuracy by default)."""
    from candleflow.errors import require

    require("optuna", "candleflow tune")
    import optuna

    tc = cfg.tune
    space = space if space is not None else tc.space
    trials = trials or tc.trials
    from candleflow.models.families import family

    for key, spec in space.items():  # every key must be a config key that takes the values searched
        for value in spec.choices or [spec.low, spec.high]:
            try:
                drawn = apply_params(cfg, {key: value})
                family(drawn.model.kind).check_task(drawn)  # a family that does not exist or cannot learn it
            except ConfigError as exc:
                raise ConfigError(f"tune space {key!r}: {exc}") from None
    name = name or f"{cfg.model.kind}-{cfg.source.kind}"
    folder = Path(cfg.output.runs_dir) / f"tune-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(folder / 'study.db').resolve()}"
    # a trial that fails raises here, as one line; Optuna's own "Trial N failed" traceback is not printed
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.training.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2) if tc.prune else optuna.pruners.NopPruner(),
    )
    maximised = tune_objective(cfg)
    before = study.user_attrs.get("objective")
    if before is not None and before != maximised:
        raise ConfigError(
            f"tune {name} maximised {before}; continue it with --objective {before} or give this study another --name"
        )
    study.set_user_attr("objective", maximised)
    done = _n_finished(study)
    if done:  # a continued study: fresh random draws, not a replay of the first ones
        study.sampler = optuna.samplers.TPESampler(seed=cfg.training.seed + len(study.trials))
    write_text(folder / "base_config.yaml", cfg.to_yaml())
    prepared: dict[str, Any] = {}
    remaining = trials - done
    if remaining > 0:
        log.info("tune %s: %d trials to run (%d done), %d folds each", name, remaining, trials - remaining, tc.folds)

    def objective(trial) -> float:
        params = {key: suggest(trial, key, spec) for key, spec in space.items()}
        trial_cfg = apply_params(cfg, params)
        t0 = time.perf_counter()
        scores = []
        for k, score in enumerate(_fold_scores(trial_cfg, prepared)):
            scores.append(score)
            trial.set_user_attr("fold_scores", scores)
            trial.report(float(np.mean(scores)), k)
            if trial.should_prune():
                trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
                raise optuna.TrialPruned()
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
        log.info("trial %d: %s -> %.4f", trial.number, params, np.mean(scores))
        return float(np.mean(scores))

    if remaining > 0:  # the results are rewritten after every trial, so a stopped study keeps its table
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(),
            callbacks=[lambda study, _trial: _write_results(study, folder, cfg, space)],
        )
    rows, best = _write_results(study, folder, cfg, space)
    if best is None:
        raise ConfigError(f"tune {name}: no trial finished; see {folder}")
    return TuneResult(folder, float(best[0]), best[1], rows)


def _is_int_range(spec: SearchParam) -> bool:
    return spec.choices is None and all(isinstance(v, int) and not isinstance(v, bool) for v in (spec.low, spec.high))


def _decode(spec: SearchParam, value: Any) -> Any:
    return json.loads(value) if spec.choices is not None else value


def _n_finished(study) -> int:
    """Trials that count towards the total: completed or pruned (failed ones are retried)."""
    return sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)


def score_fold(cfg: RunConfig, prep: PreparedData, fold: Split) -> float:
    """The trial's objective (tune.objective: balanced accuracy, Sharpe or return of the decisions,
    a regression target's IC or R^2) on one fold's validation part, trained and scored by
    the same `train_and_score` that `run` uses (so a fold equal to the run's split scores what
    the run scores)."""
    work = Path(tempfile.mkdtemp(prefix="candleflow-fold-"))
    try:
        quiet = cfg.model_copy(update={"training": cfg.training.model_copy(update={"verbose": 0})})
        trained = train_and_score(
            quiet,
            work,
            prep.dataset,
            {"train": fold["train"], "val": fold["val"]},
            model_and_loader(quiet, prep),
            references=False,  # a trial scores the model only: the reference models would be refitted for nothing
            candles=prep.candles,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    val = trained.metrics["val"]
    objective = tune_objective(cfg)
    if objective in ("ic", "r2"):  # R^2 out of sample (the naive forecast scores 0); undefined counts as no skill
        value = val["table"]["model"][objective]
        return float(value) if value is not None else 0.0
    if objective in ("sharpe", "return"):  # the fold's validation decisions traded, costs included
        from candleflow.evaluation.metrics import decide
        from candleflow.evaluation.trading import trade_score

        part_ds, _, probs = trained.scored["val"]
        return trade_score(prep.candles, part_ds.ends, decide(probs, val["decision_margin"]), cfg, objective)
    return float(val["table"]["model"]["balanced_accuracy"])


def tune_objective(cfg: RunConfig) -> str:
    """tune.objective with `auto` resolved by the target's task: r2 for regression targets,
    balanced_accuracy for classes (`TaskRules.default_objective`)."""
    if cfg.tune.objective != "auto":
        return cfg.tune.objective
    return cfg.labels.rules.default_objective


def _fold_scores(cfg: RunConfig, prepared: dict[str, Any]):
    """The objective on each walk-forward fold's validation period, by the layout's fold scorer
    (FOLD_SCORES; a universe's folds are cut at the same instants for every asset)."""
    scores = FOLD_SCORES.get(cfg.layout)
    if scores is None:
        raise ConfigError(
            f"tune: a {cfg.layout} run ({cfg.layout_rules.what}) is not tuned yet; layouts tuned: "
            f"{', '.join(FOLD_SCORES)} (a panel's assets tune as a pooled universe: dataset.layout series)"
        )
    yield from scores(cfg, prepared)


def _series_fold_scores(cfg: RunConfig, prepared: dict[str, Any]):
    """One series' folds: expanding walk-forward folds before the test period, purged."""
    key = json.dumps({s: cfg.model_dump(mode="json")[s] for s in DATA_SECTIONS}, sort_keys=True)
    if key not in prepared:
        prepared.clear()  # one prepared dataset in memory at a time
        prepared[key] = prepare(cfg)
    prep = prepared[key]
    ds, split = prep.dataset, prep.split
    before_test = np.arange(len(ds)) if "test" not in split.parts else np.flatnonzero(ds.ends < split.starts["test"])
    for fold in walk_forward_folds(ds.ends, prep.labels.t1, cfg.tune.folds, cfg.dataset.embargo, before_test):
        yield score_fold(cfg, prep, fold)


def _pooled_fold_scores(cfg: RunConfig, prepared: dict[str, Any]):
    """A universe's folds: its store built (only what is missing), the windows before the run's
    test period cut into `tune.folds` expanding folds by time (purged across assets), each
    trained as a pooled run trains; the objective is the pooled R^2 (r2) or the daily rank IC
    across the assets (ic), or the balanced accuracy for classes."""
    from candleflow.evaluation.pooled import ic_summary
    from candleflow.scale.pooled import pooled_dataset, pooled_windows, universe_windows

    d = cfg.dataset
    key = json.dumps({s: cfg.model_dump(mode="json")[s] for s in (*DATA_SECTIONS, "universe")}, sort_keys=True)
    if key not in prepared:
        prepared.clear()
        prepared[key] = universe_windows(cfg).raw
    raw = prepared[key]
    ends, label_ends = raw.end_times(), raw.label_end_times(d.embargo)
    if d.test_fraction > 0:  # the run's test period stays unseen
        cut = np.sort(ends)[int(ends.size * (1 - d.test_fraction))]
        keep = np.flatnonzero(label_ends < cut)
    else:
        keep = np.arange(ends.size)
    sub = raw.subset(keep)
    for split in walk_forward_by_time(sub.end_times(), sub.label_end_times(d.embargo), cfg.tune.folds, d.val_fraction):
        parts = {"train": split["train"], "val": split["val"]}
        ds = pooled_dataset(cfg, sub, parts)
        quiet = cfg.model_copy(update={"training": cfg.training.model_copy(update={"verbose": 0})})
        work = Path(tempfile.mkdtemp(prefix="candleflow-fold-"))
        try:
            trained = train_and_score(quiet, work, ds, parts, model_and_loader(quiet, None), references=False)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        val = trained.metrics["val"]
        objective = tune_objective(cfg)
        if objective == "ic":  # the daily rank IC across the assets (a regression target's objective)
            part_ds, _, forecast = trained.scored["val"]
            w = pooled_windows(part_ds, part_ds.with_labels(sub.series_labels))
            value = ic_summary(w.times, w.y, np.asarray(forecast, np.float64).reshape(-1), cfg.labels.horizon)[
                "rank_ic"
            ]
        else:
            value = val["table"]["model"][cfg.labels.rules.default_objective]
        yield float(value) if value is not None else 0.0


# each layout's folds for tune (`RunConfig.layout` decides which); a panel is not tuned yet
FOLD_SCORES = {"series": _series_fold_scores, "universe": _pooled_fold_scores}


def parse_search_param(item: str) -> tuple[str, SearchParam]:
    """`KEY={low: .., high: ..[, log: true]}` or `KEY={choices: [..]}` (YAML) as (key, SearchParam);
    anything else is one line naming the item."""
    key, sep, raw = item.partition("=")
    try:
        return key.strip(), SearchParam.model_validate(yaml.safe_load(raw) if sep else None)
    except Exception as exc:  # pydantic or YAML: name the --param and say what is wrong with it
        errors = getattr(exc, "errors", None)
        why = (
            "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in errors())
            if callable(errors)
            else str(exc).splitlines()[0]
        )
        raise ConfigError(
            f"--param {item!r}: {why}; expected KEY={{low: .., high: ..[, log: true]}} or KEY={{choices: [..]}}"
        ) from None


def _write_results(study, folder: Path, cfg: RunConfig, space: dict[str, SearchParam]):
    """trials.csv (one row per trial, best first), best.yaml (the base config with the best
    values) and summary.json, each written atomically; returns the rows and (best value, best
    params), or None before any trial completed."""
    rows = []
    for t in study.trials:
        row = {
            "trial": t.number,
            "state": t.state.name.lower(),
            "value": None if t.value is None else round(t.value, 6),
        }
        row |= {key: json.dumps(_decode(space[key], t.params[key])) if key in t.params else "" for key in space}
        row["fold_scores"] = " ".join(f"{s:.4f}" for s in t.user_attrs.get("fold_scores", []))
        row["seconds"] = t.user_attrs.get("seconds", "")
        rows.append(row)
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0)))
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text(folder / "trials.csv", buf.getvalue())
    complete = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    if not complete:
        return rows, None
    best = max(complete, key=lambda t: t.value)
    best_params = {key: _decode(space[key], best.params[key]) for key in space if key in best.params}
    header = (
        f"# best of {len(complete)} finished trials of tune study {study.study_name!r}: trial "
        f"{best.number}, mean walk-forward {tune_objective(cfg).replace('_', ' ')} {best.value:.4f}\n"
    )
    write_text(folder / "best.yaml", header + apply_params(cfg, best_params).to_yaml())
    write_json(
        folder / "summary.json",
        {
            "study": study.study_name,
            "best_trial": best.number,
            "best_value": best.value,
            "best_params": best_params,
            "trials": len(study.trials),
            "folds": cfg.tune.folds,
        },
    )
    return rows, (best.value, best_params)
