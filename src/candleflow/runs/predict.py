"""A trained run applied to new candles: the run's own config computes the features and windows
(the training code, not a copy), the run's model scores them, the run's decision rule decides.
Only the source may differ from training; anything that would change the features is refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from candleflow.config import (
    LayoutRules,
    RunConfig,
    apply_override,
    flatten_keys,
    layout_rules,
    load_config,
    validate_config,
)
from candleflow.data.candles import Candles
from candleflow.data.load import load_candles
from candleflow.dataset.asset_scales import AssetScales, asset_columns, asset_one_hot
from candleflow.dataset.features import compute_features
from candleflow.dataset.labels import CLASS_NAMES
from candleflow.dataset.targets import make_labels, target
from candleflow.dataset.windows import WindowDataset
from candleflow.errors import ConfigError, DataError, RegistryError
from candleflow.evaluation.metrics import decide
from candleflow.models.families import Family
from candleflow.runs.folder import RunFolder
from candleflow.runs.registry import family_of, load_model, resolve_run
from candleflow.runs.timerange import in_range

DECISION_KEYS = ("evaluation.", "backtest.")  # keys predict may change: they decide and trade, never compute features


@dataclass
class Predictor:
    """The model of one run folder with the config it was trained with."""

    run_dir: Path
    config: RunConfig
    model: Any
    metadata: dict[str, Any]
    which: str = "validated"  # or "refit": the production model trained on every labelled window
    source: Any = None  # the source the new candles came from (other assets follow its months)

    @property
    def model_used(self) -> str:
        """Which of the run's models scores, in words (the refit one with the bars it saw)."""
        refit = self.metadata.get("refit")
        if self.which == "refit" and isinstance(refit, dict):
            return f"the refit model (trained on {refit['windows']:,} windows to {refit['to']})"
        return "the validated model"

    @classmethod
    def from_run(cls, run: str | Path, runs_dir: str | Path = "runs", model: str = "auto") -> Predictor:
        """Load a complete run: its config, metadata and model (safe mode, no pickle); `model`
        auto takes the refit (production) model where the run has one, `validated` the model
        its metrics describe."""
        path = resolve_run(run, runs_dir)
        folder = RunFolder(path)
        missing = folder.missing()
        if missing:
            raise RegistryError(f"{path}: not a complete run folder (missing {', '.join(missing)})")
        meta = folder.metadata()
        if meta.get("task", "classify") != "classify":
            raise RegistryError(f"{path}: a {meta.get('task')} run; predict applies classifier runs")
        used = "refit" if model != "validated" and isinstance(meta.get("refit"), dict) else "validated"
        return cls(path, folder.config(), load_model(path, runs_dir, which=model), meta, used)

    @property
    def family(self) -> Family:
        """The model's family, as the run's metadata names it."""
        return family_of(self.run_dir, self.metadata)

    @property
    def name(self) -> str:
        """The run's name (a serving bundle keeps the name of the run it was exported from)."""
        return str(self.metadata.get("run") or self.run_dir.name)

    def source_config(self, overrides: list[str] | None = None, config_file: str | Path | None = None) -> RunConfig:
        """The run's config with its source replaced (`source.*` overrides, or the `source:` of a
        config file); any other key that differs from the run's is refused in one line."""
        data = self.config.model_dump(mode="json")
        if config_file is not None:
            other = load_config(config_file)  # validated first: a bad file is its own one-line error
            written = flatten_keys(yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {})
            run_keys = flatten_keys(data)
            for key, value in written.items():
                if key.startswith(("source.", "output.", *DECISION_KEYS)) or key == "source":
                    continue
                if run_keys.get(key) != value:
                    raise ConfigError(
                        f"{config_file}: key {key!r} differs from the run's config; predict takes only the "
                        "source from it (the features must be the training features)"
                    )
            data["source"] = other.source.model_dump(mode="json")
            for key, value in written.items():  # decision and trading keys the file sets: they touch no feature
                if key.startswith(DECISION_KEYS):
                    section, name = key.split(".", 1)
                    data[section][name] = value
        for item in overrides or []:
            key = item.split("=", 1)[0].strip()
            if not key.startswith(("source.", *DECISION_KEYS)) and key != "source":
                raise ConfigError(
                    f"--set {key}: predict uses the run's own config; only source, evaluation and backtest keys may "
                    "change (anything else would change the features the model was trained on)"
                )
            if key == "evaluation.decision_margin" and item.split("=", 1)[1].strip() == "auto":
                raise ConfigError(
                    "--set evaluation.decision_margin=auto: auto is chosen on a run's validation period; predict "
                    "applies a number (the run's own is in its config.yaml)"
                )
            apply_override(data, item)
        return validate_config(data)

    @property
    def layout(self) -> str:
        """series, universe or panel: how the run's model reads its input."""
        return str(self.metadata.get("layout", "series"))

    @property
    def layout_rules(self) -> LayoutRules:
        """What the run's layout is (`candleflow.config.layouts`)."""
        return layout_rules(self.layout)

    def predict_source(
        self, cfg: RunConfig, start: str | None = None, end: str | None = None, latest: bool = False
    ) -> tuple[pa.Table, str]:
        """Read `cfg`'s source (every ticker of its universe, for a panel run) and predict:
        the table and what it was scored on ('BTCUSDT 1h', or '6 tickers 1h'). With `latest`,
        only the newest complete window is scored."""
        if self.layout_rules.side_by_side:  # every ticker at once
            from candleflow.runs.panel_predict import predict_panel

            table = predict_panel(self.model, cfg, self.metadata, self.run_dir, start, end, latest)
            return table, f"{len(self.metadata.get('tickers', []))} tickers {self.metadata.get('interval', '')}"
        if self.layout_rules.pooled and cfg.labels.regression:  # the cross-section, over every asset
            from candleflow.runs.pooled_predict import is_pooled_source, predict_pooled

            if is_pooled_source(cfg):
                table = predict_pooled(self, cfg, start, end, latest)
                return (
                    table,
                    f"{len(set(table.column('asset').to_pylist()))} assets {self.metadata.get('interval', '')}",
                )
        candles, _ = load_candles(cfg.source, cfg.validation, cfg.cache)
        # the decision and trading keys `cfg` may change (source_config allows no other); features stay the run's
        deciding = Predictor(
            self.run_dir,
            self.config.model_copy(update={"evaluation": cfg.evaluation, "backtest": cfg.backtest}),
            self.model,
            self.metadata,
            self.which,
            cfg.source,
        )
        return deciding.predict(candles, start, end, latest), f"{candles.symbol} {candles.interval}"

    def predict(
        self,
        candles: Candles,
        start: str | None = None,
        end: str | None = None,
        latest: bool = False,
        cross_section: np.ndarray | None = None,
    ) -> pa.Table:
        """One row per window end with a complete window (inside one segment, finite features):
        open time, close, class probabilities, decision, run name and data fingerprint. `start` and
        `end` (ISO dates) select the rows; the bars before `start` still feed the features. With
        `latest`, only the newest window is scored (one row). `cross_section`: the candles'
        cross-sectional columns (features.cross_section), computed across the universe's assets
        by `predict_pooled`; a run with such columns cannot be applied to one asset alone."""
        cfg = self.config
        ds, ends = self.windows(candles, start, end, latest, cross_section)
        probs = self._probabilities(ds, candles)
        table = {"classify": self._decisions, "regress": self._forecast_table}[cfg.labels.task](candles, ends, probs)
        return _noted(table, coverage_notes(candles, ends, start, end))

    def _decisions(self, candles: Candles, ends: np.ndarray, probs: np.ndarray) -> pa.Table:
        """The decisions at the run's margin, the run's labels where their forward window is
        already complete (null for the newest bars: the truth to score the signals against later,
        never an input), and the new period's backtest."""
        cfg = self.config
        decisions = decide(probs, cfg.evaluation.margin)
        truth, _ = make_labels(candles, cfg.labels)
        label = truth.y[ends]
        table = self._decision_table(candles, ends, probs, decisions, label)
        return _with_backtest(table, new_period_backtest(candles, ends, decisions, label, cfg))

    def windows(
        self,
        candles: Candles,
        start: str | None = None,
        end: str | None = None,
        latest: bool = False,
        cross_section: np.ndarray | None = None,
    ) -> tuple[WindowDataset, np.ndarray]:
        """The windows of `candles` the run's model reads (its features, scales, identity columns
        and window, cut as training cut them) and their end rows; see `predict`."""
        cfg, meta = self.config, self.metadata
        if self.layout_rules.side_by_side:
            raise RegistryError(
                f"{self.run_dir}: a {self.layout} run reads every ticker: use predict_source (or the CLI)"
            )
        trained_on = meta.get("interval") or []
        trained_on = [trained_on] if isinstance(trained_on, str) else trained_on  # a universe run: a list
        if trained_on and candles.interval not in trained_on:
            raise DataError(
                f"{candles.symbol}: bars of {candles.interval}; run {self.name} was trained on "
                f"{' and '.join(trained_on)} bars"
            )
        features = self.features_of(candles)
        names, values = list(features.names), features.values
        if cfg.features.cross_section:
            from candleflow.dataset.cross_features import cross_section_names

            if cross_section is None:
                raise ConfigError(
                    f"{self.run_dir}: its features.cross_section columns are computed across the universe's assets: "
                    "predict on the run's templated source (every asset), not one file"
                )
            names += cross_section_names(cfg.features.cross_section)
            values = np.ascontiguousarray(np.hstack([values, cross_section]), dtype=np.float32)
        if cfg.dataset.asset_embedding:
            names += asset_columns(list(meta.get("series", [])))
        if names != list(meta.get("feature_names", names)):
            raise RegistryError(f"{self.run_dir}: features {names} differ from the run's {meta['feature_names']}")
        scales = AssetScales.load(self.run_dir)
        if scales is not None:  # a pooled run: each asset on its own training scale, as it trained
            values = scales.apply(values, candles.symbol, candles.interval)
        if cfg.dataset.asset_embedding:  # the asset's one-hot identity among the run's, after the scaled columns
            series = list(meta.get("series", []))
            one_hot = asset_one_hot(series, candles.symbol, candles.interval, values.shape[0])
            values = np.ascontiguousarray(np.hstack([values, one_hot]), dtype=np.float32)
        d = cfg.dataset
        unlabelled = np.zeros(len(candles), np.int8)  # every complete window gets a row, label or not
        # cut as the run cut them (WindowDataset.from_arrays); stride 1, not dataset.stride: the
        # stride thinned the run's training windows, and a prediction is wanted at every bar
        every = WindowDataset.from_arrays(values, unlabelled, candles.segments, d.window, d.sample_rate, 1)
        ends = _between(candles, every.ends, start, end)
        if ends.size == 0:
            raise DataError(
                f"{candles.symbol} {candles.interval}: {len(candles)} bars give no complete {d.window}-bar window"
                + (f" between {start or 'the start'} and {end or 'the end'}" if start or end else "")
                + f" (the features need {features.warmup} bars of history first)"
            )
        if latest:  # score only what is asked: the newest window, not every window then keep one
            ends = ends[-1:]
        return WindowDataset(values, unlabelled, ends, d.window, d.sample_rate), ends

    def features_of(self, candles: Candles) -> Any:
        """The run's per-series features of `candles` (with its other assets' columns, read over
        the same months), as training computed them."""
        cfg = self.config
        others = None
        if cfg.features.assets:  # the other series, over the main source's months (see load_assets)
            from candleflow.dataset.prepare import load_assets

            others = load_assets(cfg, self.source or cfg.source)
        return compute_features(candles, cfg.features, others)

    def _decision_table(
        self, candles: Candles, ends: np.ndarray, probs: np.ndarray, decisions: np.ndarray, label: np.ndarray
    ) -> pa.Table:
        return pa.table(
            {
                "open_time": pa.array(candles.open_time[ends].astype("datetime64[ns]")),
                "close": candles.close[ends],
                **{f"prob_{c.lower()}": probs[:, k].astype(np.float32) for k, c in enumerate(CLASS_NAMES)},
                "decision": pa.array([CLASS_NAMES[k] for k in decisions]),
                "label": pa.array([CLASS_NAMES[k] if k >= 0 else None for k in label], pa.string()),
                "run": pa.array([self.name] * ends.size),
                "data_fingerprint": pa.array([candles.fingerprint] * ends.size),
            }
        )

    def _forecast_table(self, candles: Candles, ends: np.ndarray, outputs: np.ndarray) -> pa.Table:
        """A regression run's rows: the forecast in the target's units (log return or log
        realised volatility over the next labels.horizon bars) and, where the forward window is
        complete, the realised target (null for the newest bars)."""
        forecast = np.asarray(outputs, np.float32).reshape(-1)
        truth = target(self.config.labels.kind).labels(candles, self.config.labels)[0].y
        realised = truth[ends]
        kind = self.config.labels.kind
        return pa.table(
            {
                "open_time": pa.array(candles.open_time[ends].astype("datetime64[ns]")),
                "close": candles.close[ends],
                "forecast": forecast,
                "target": pa.array([kind] * ends.size),
                "horizon": pa.array(np.full(ends.size, self.config.labels.horizon, np.int32)),
                "realised": pa.array(realised, pa.float32(), mask=~np.isfinite(realised)),
                "run": pa.array([self.name] * ends.size),
                "data_fingerprint": pa.array([candles.fingerprint] * ends.size),
            }
        )

    def _probabilities(self, ds: WindowDataset, candles: Candles) -> np.ndarray:
        """The family's own prediction path: the same as the run scored its validation windows."""
        return self.family.probabilities(self.model, ds, self.config, candles)


def coverage_notes(candles: Candles, ends: np.ndarray, start: str | None, end: str | None) -> list[str]:
    """What a trader must know about the rows predict returns: where the asked range starts or
    ends beyond the scored windows, and every gap inside the scored range (a segment boundary:
    the windows after it wait for the features' warm-up), with times."""
    notes: list[str] = []
    if ends.size == 0:
        return notes
    first, last = int(ends[0]), int(ends[-1])
    day = 86_400_000_000_000
    if start is not None:
        asked = np.datetime64(start, "ns").astype(np.int64)
        if int(candles.open_time[first]) - asked >= day:
            notes.append(
                f"asked from {start}; the first scored window ends at {candles.time_str(first)} (no complete window "
                "before it: missing data or the features' warm-up)"
            )
    if end is not None:
        asked = np.datetime64(end, "ns").astype(np.int64)
        if asked - int(candles.open_time[last]) >= day:
            notes.append(f"asked to {end}; the data ends at {candles.time_str(last)}")
    starts = candles.segments[1:, 0]
    inside = starts[(starts > first) & (starts <= last)]
    for s in inside:
        notes.append(
            f"gap: no bars from {candles.time_str(int(s) - 1)} to {candles.time_str(int(s))}; windows resume at "
            f"{candles.time_str(int(ends[np.searchsorted(ends, s)]))}"
        )
    return notes


def _noted(table: pa.Table, notes: list[str]) -> pa.Table:
    """The table with its coverage notes in the schema metadata (they travel into Parquet)."""
    import json

    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"candleflow_notes": json.dumps(notes)})


def new_period_backtest(
    candles: Candles, ends: np.ndarray, decisions: np.ndarray, label: np.ndarray, cfg: RunConfig
) -> dict[str, Any] | None:
    """The decisions traded as the run's backtest trades them (`backtest.*`, which predict may
    change), over the rows whose labels are complete (their forward window has happened), beside
    buy and hold over the same bars; None with fewer than two such rows."""
    from candleflow.data.calendar import bars_per_year
    from candleflow.evaluation.backtest import buy_and_hold, configured_backtest, performance
    from candleflow.evaluation.funding import funding_for
    from candleflow.evaluation.trading import sides_of

    known = ends[label >= 0]
    if known.size < 2:
        return None
    span = (int(known[0]), min(len(candles), int(known[-1]) + cfg.labels.horizon + 1))
    funding, _ = funding_for(cfg, candles)
    per_year = bars_per_year(candles.calendar, candles.interval, int(candles.open_time[-1]))
    model = configured_backtest(candles, known, sides_of(decisions[label >= 0]), cfg, span, funding=funding)
    hold = buy_and_hold(candles, span, cfg.backtest.fee, cfg.backtest.slippage, funding, cfg.backtest.capital)
    keep = ("total_return", "sharpe", "max_drawdown", "trades", "hit_rate", "final_capital")
    return {
        "from": candles.time_str(span[0]),
        "to": candles.time_str(span[1] - 1),
        "windows": int(known.size),
        "model": {k: v for k, v in performance(model, candles.interval, per_year).items() if k in keep},
        "buy_and_hold": {k: v for k, v in performance(hold, candles.interval, per_year).items() if k in keep},
    }


def _with_backtest(table: pa.Table, bt: dict[str, Any] | None) -> pa.Table:
    import json

    if bt is None:
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"candleflow_backtest": json.dumps(bt)})


def table_backtest(table: pa.Table) -> dict[str, Any] | None:
    """The new period's backtest `predict` attached to a table (None where no label was complete)."""
    import json

    raw = (table.schema.metadata or {}).get(b"candleflow_backtest")
    return json.loads(raw) if raw else None


def table_notes(table: pa.Table) -> list[str]:
    """The coverage notes `predict` attached to a table."""
    import json

    raw = (table.schema.metadata or {}).get(b"candleflow_notes")
    return list(json.loads(raw)) if raw else []


def latest_rows(table: pa.Table) -> pa.Table:
    """The rows of the newest time: the last bar's (one series) or every ticker's (a panel)."""
    times = table.column("open_time")
    import pyarrow.compute as pc

    return table.filter(pc.equal(times, pc.max(times)))


def score_against_labels(table: pa.Table, regress: bool) -> dict[str, Any] | None:
    """Balanced accuracy and macro F1 of the decisions on the rows whose label is known, with the
    best naive baseline's balanced accuracy on the same rows (majority of those labels); for a
    regression run (`regress`), the IC of the forecasts where the target is realised. None when
    no row has a label yet."""
    from candleflow.evaluation.metrics import classification_metrics

    if regress:  # IC and R^2 against zero where realised
        from candleflow.evaluation.regression import information_coefficients

        realised = table.column("realised").to_numpy(zero_copy_only=False)
        forecast = table.column("forecast").to_numpy()
        ok = np.isfinite(realised)
        if not ok.any():
            return None
        return {"rows": int(ok.sum()), **information_coefficients(realised[ok], forecast[ok])}
    labels = table.column("label").to_pylist()
    known = [i for i, v in enumerate(labels) if v is not None]
    if not known:
        return None
    index = {c: k for k, c in enumerate(CLASS_NAMES)}
    y = np.array([index[labels[i]] for i in known])
    decisions = table.column("decision").to_pylist()
    pred = np.array([index[decisions[i]] for i in known])
    m = classification_metrics(y, pred)
    return {"rows": len(known), "balanced_accuracy": m["balanced_accuracy"], "macro_f1": m["macro_f1"]}


def _between(candles: Candles, ends: np.ndarray, start: str | None, end: str | None) -> np.ndarray:
    return ends[in_range(candles.open_time[ends], start, end)]


def write_signals(table: pa.Table, path: str | Path, overwrite: bool = False) -> Path:
    """The signals as Parquet or CSV (by suffix), atomically; an existing file only with `overwrite`."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from candleflow.fs.atomic import atomic_path
    from candleflow.fs.guard import check_output

    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise DataError(f"{path}: expected a .parquet or .csv name for the signals")
    check_output(path, overwrite)
    with atomic_path(path, suffix=path.suffix) as tmp:
        (pq.write_table if path.suffix == ".parquet" else pacsv.write_csv)(table, tmp)
    return path
