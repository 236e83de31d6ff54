"""`predict` of a pooled regression run (one model over a universe) on a templated source: every
asset the template names, each read and standardised as it trained, one row per time and asset
with the forecast, its rank across the assets at that time, and the realised target where its
window is complete; the new period's daily rank IC is in the table's notes. An asset whose file
is gone (it stopped trading) is absent, said in the notes; nothing is filled."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pyarrow as pa

from candleflow.config import RunConfig
from candleflow.data.load import load_candles
from candleflow.dataset.universe import plan_tasks
from candleflow.errors import DataError, SourceError
from candleflow.evaluation.pooled import Groups, group_ranks, ic_summary

log = logging.getLogger("candleflow")


def is_pooled_source(cfg: RunConfig) -> bool:
    """A source that names many assets: a files source with {symbol} in its paths."""
    return any("{symbol}" in p for p in getattr(cfg.source, "paths", []))


def predict_pooled(predictor: Any, cfg: RunConfig, start: str | None, end: str | None, latest: bool) -> pa.Table:
    """Predict every asset of `cfg`'s universe (its symbols, or '*': every file the template
    matches) with `predictor` (a Predictor of a pooled regression run); an asset the run trained
    on whose file is gone is absent, said in the notes."""
    tasks = plan_tasks(cfg)
    listed = {t.name for t in tasks}
    missing = [n for n in predictor.metadata.get("series", []) if n not in listed]  # trained on, no file now
    assets = []
    for task in tasks:
        try:
            candles, _ = load_candles(task.config.source, cfg.validation, cfg.cache)
        except SourceError as exc:
            if "no file matches" not in str(exc):
                raise
            missing.append(task.name)  # its file is gone: it stopped trading
            continue
        assets.append((task, candles))
    extra = _cross_section(predictor, [c for _, c in assets])
    tables: list[pa.Table] = []
    said: list[tuple[str, str]] = []
    for k, (task, candles) in enumerate(assets):
        table = predictor.predict(candles, start, end, latest, None if extra is None else extra[k])
        said += [(task.name, n) for n in json.loads((table.schema.metadata or {}).get(b"candleflow_notes", b"[]"))]
        tables.append(table.add_column(0, "asset", pa.array([task.name] * table.num_rows)))
    if not tables:
        raise DataError(f"no asset of the universe has a file for {', '.join(cfg.source.paths)}")  # type: ignore[union-attr]
    table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables])
    times = table.column("open_time").cast(pa.int64()).to_numpy()
    forecast = table.column("forecast").to_numpy(zero_copy_only=False).astype(np.float64)
    groups = Groups.by_time(times)
    n = groups.count()
    table = table.append_column(
        "rank", pa.array(((group_ranks(groups, forecast) - 0.5) / n[groups.of]).astype(np.float32))
    )
    realised = table.column("realised").to_numpy(zero_copy_only=False).astype(np.float64)
    scored = ic_summary(times, realised, forecast, predictor.config.labels.horizon)
    notes = _grouped(said)
    if missing:
        notes.append(
            f"{len(missing)} of the run's assets absent (no file: stopped trading or not listed; never filled): "
            + ", ".join(missing[:20])
            + (" ..." if len(missing) > 20 else "")
        )
    if scored["rank_ic"] is not None:
        notes.append(
            f"the new period's daily rank IC across the assets: {scored['rank_ic']:+.4f} over {scored['times']} times "
            f"(ICIR {scored['rank_icir'] or 0:+.3f}, t {scored['rank_ic_t'] or 0:+.2f} over non-overlapping periods)"
        )
    meta = {b"candleflow_notes": json.dumps(notes), b"candleflow_cross_section": json.dumps(scored)}
    return table.replace_schema_metadata(meta)


def _grouped(notes: list[tuple[str, str]]) -> list[str]:
    """Each asset's coverage note once per text: 'AAPL-1d: ...' for one asset, '297 assets (A-1d,
    AAPL-1d, ...): ...' where many say the same."""
    by_text: dict[str, list[str]] = {}
    for asset, note in notes:
        by_text.setdefault(note, []).append(asset)
    out = []
    for note, assets in by_text.items():
        who = assets[0] if len(assets) == 1 else f"{len(assets)} assets ({', '.join(assets[:3])}, ...)"
        out.append(f"{who}: {note}")
    return out


def _cross_section(predictor: Any, candles: list[Any]) -> list[np.ndarray] | None:
    """Each asset's cross-sectional columns across the assets read (None: the run has none)."""
    specs = predictor.config.features.cross_section
    if not specs or not candles:
        return None
    from candleflow.dataset.cross_features import cross_section_columns

    features = [predictor.features_of(c) for c in candles]
    return cross_section_columns(
        [c.open_time for c in candles], [f.values for f in features], list(features[0].names), specs
    )


def latest_ranked(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a pooled or panel prediction table at its latest time with a forecast, the
    highest-ranked first (what the console shows)."""
    times = table.column("open_time").cast(pa.int64()).to_numpy()
    last = table.filter(pa.array(times == times.max()))
    rows = [r for r in last.to_pylist() if r["forecast"] is not None]
    return sorted(rows, key=lambda r: -r["rank"])


__all__ = ["is_pooled_source", "latest_ranked", "predict_pooled"]
