"""A serving bundle: a run's exported model with what `predict` needs to apply it to candles
(config, metadata, the trained model, the candle schema), so training and serving share one
feature definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from candleflow.data.candles import OHLCV
from candleflow.dataset.asset_scales import FILE as ASSET_SCALES
from candleflow.errors import RegistryError
from candleflow.runs.folder import RunFolder
from candleflow.runs.registry import family_of, load_model, read_metadata, resolve_run


def export_bundle(
    run: str | Path, out: str | Path | None = None, fmt: str = "stablehlo", runs_dir: str | Path = "runs"
) -> tuple[Path, str]:
    """Export a complete classifier or reward run into `out` (default RUN/export-FORMAT): the model
    in `fmt` (LightGBM and linear runs: their own file only), the run's config, metadata, metrics
    and model file, and a serving.json with the candle schema and the predict command. Returns the
    folder and the format used."""
    from candleflow.models.export import export_model

    run_dir = resolve_run(run, runs_dir)
    folder = RunFolder(run_dir)
    missing = folder.missing()
    if missing:
        raise RegistryError(f"{run_dir}: not a complete run folder (missing {', '.join(missing)})")
    meta = read_metadata(run_dir)
    cfg = folder.config()
    fam = family_of(run_dir, meta)
    used = "native" if fam.tabular else fmt
    model = load_model(run_dir)
    model_file = folder.model_file()
    assert model_file is not None  # missing() checked it
    info = {
        "run": meta.get("run"),
        "model_kind": meta.get("model_kind"),
        "task": meta.get("task", "classify"),
        "classes": meta.get("classes"),
        "data_fingerprint": meta.get("data_fingerprint"),
        "serving_bundle": serving_contract(cfg, meta, fam.normalisation),
    }
    include = [run_dir / RunFolder.CONFIG, run_dir / RunFolder.METADATA, run_dir / RunFolder.METRICS, model_file]
    if (run_dir / ASSET_SCALES).is_file():  # a pooled run: predict standardises each asset as it trained
        include.append(run_dir / ASSET_SCALES)
    target = export_model(model, Path(out) if out else run_dir / f"export-{used}", used, info, include)
    return target, used


def serving_contract(cfg: Any, meta: dict[str, Any], normalisation: str) -> dict[str, Any]:
    """What a caller must feed the bundle and what it answers: the candle schema, the bar interval,
    the features and windows computed from them inside candleflow, and the decision rule."""
    d = cfg.dataset
    return {
        "candles": {
            "columns": {"open_time": "timestamp (UTC)", **{c: "float64" for c in OHLCV}},
            "interval": meta.get("interval"),
            "validation": cfg.validation.model_dump(mode="json"),
        },
        "features": {
            "names": meta.get("feature_names"),
            "config": cfg.features.model_dump(mode="json"),
            "normalisation": normalisation,
            **(
                {"asset_scaling": "per_asset: each asset's features standardised by asset_scales.npz first"}
                if meta.get("asset_scaling") == "per_asset"
                else {}
            ),
        },
        "windows": {"bars": d.window, "sample_rate": d.sample_rate, "lags": meta.get("lags")},
        "decision": {
            "rule": "the most likely class, except HOLD where it beats the runner-up by less than the margin",
            "margin": cfg.evaluation.margin,
        },
        "predict": {
            "command": "candleflow predict THIS_FOLDER --set source.kind=files --set source.paths=[candles.csv] "
            "--out signals.parquet",
            "python": "candleflow.Predictor.from_run('THIS_FOLDER').predict(candles)",
        },
    }
