"""The entries of a universe: each symbol x interval (or named source) as its own config, and
the key that says when an entry's data or settings changed. Used by the store builder
(`scale/cluster.py`) and by everything that reads a universe's series again (panel predict)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from candleflow._version import __version__
from candleflow.config import BinanceSource, FilesSource, RunConfig, SyntheticSource, YFinanceSource
from candleflow.dataset.targets import CONTEXT
from candleflow.errors import ConfigError


@dataclass(frozen=True)
class BuildTask:
    """One entry to prepare: its name in the store, its config (with its own source) and key."""

    name: str
    config: RunConfig
    key: str


def plan_tasks(cfg: RunConfig) -> list[BuildTask]:
    """The entries of the configured universe: named sources, then symbols x intervals over the
    source (just the source itself when the universe names none)."""
    uni, base = cfg.universe, cfg.source
    sources: dict[str, Any] = dict(uni.sources)
    if uni.symbols or uni.intervals or not uni.sources:
        listed = template_symbols(base, uni.intervals) if uni.symbols == "*" else uni.symbols
        symbols: list[Any] = listed or list(getattr(base, "tickers", None) or [getattr(base, "symbol", None)])
        intervals: list[Any] = uni.intervals or [getattr(base, "interval", None)]
        for k, symbol in enumerate(symbols):
            for interval in intervals:
                # the ticker as it is ('AAPL'), with its interval where the universe names one ('BTCUSDT-1h')
                name = (f"{symbol or 'files'}" + (f"-{interval}" if interval else "")).replace("/", "_")
                if name in sources:
                    raise ConfigError(f"universe: entry {name!r} is named twice (symbols x intervals and sources)")
                sources[name] = _source_for(base, symbol, interval, k)
    tasks = []
    for name, source in sources.items():
        task_cfg = cfg.model_copy(update={"source": source})
        tasks.append(BuildTask(name, task_cfg, task_key(task_cfg)))
    return tasks


MAX_SYMBOLS = 20_000  # a template matching more files than this is not a universe we were asked for


def template_symbols(base: Any, intervals: list[str]) -> list[str]:
    """`universe.symbols: '*'`: the symbols of every file a files source's {symbol} template
    matches ({interval} filled with each of `intervals`, or the source's), sorted; a one-line
    error where the source is not files, has no {symbol}, or nothing (or too much) matches."""
    import glob
    import re
    from pathlib import Path

    from candleflow.fs.guard import check_name

    templates = [p for p in getattr(base, "paths", []) if "{symbol}" in p] if isinstance(base, FilesSource) else []
    if not templates:
        raise ConfigError("universe.symbols '*': expected a files source whose paths hold {symbol}")
    found: set[str] = set()
    for template in templates:
        for interval in intervals or [base.interval or "*"]:
            t = str(Path(template.replace("{interval}", interval)).expanduser())
            if t.count("{symbol}") != 1:
                raise ConfigError(f"universe.symbols '*': {template} must hold {{symbol}} once")
            head, tail = t.split("{symbol}")
            loose = lambda x: re.escape(x).replace(re.escape("*"), "[^/]*")  # noqa: E731
            pattern = re.compile(f"^{loose(head)}(?P<symbol>[^/]+){loose(tail)}$")
            for path in glob.glob(f"{head}*{tail}"):
                m = pattern.match(path)
                if m is not None:
                    found.add(m.group("symbol"))
                if len(found) > MAX_SYMBOLS:
                    raise ConfigError(f"universe.symbols '*': {t} matches more than {MAX_SYMBOLS:,} files")
    if not found:
        raise ConfigError(f"universe.symbols '*': no file matches {', '.join(templates)}")
    for symbol in found:
        check_name(symbol, f"symbol (from a file matching {templates[0]})")
    return sorted(found)


def _source_for(base: Any, symbol: str | None, interval: str | None, position: int) -> Any:
    data = base.model_dump()
    if symbol is not None and isinstance(base, YFinanceSource):
        data["tickers"] = [symbol]
    elif symbol is not None:
        data["symbol"] = symbol
    if interval is not None:
        data["interval"] = interval
    if isinstance(base, FilesSource):
        data["paths"] = [p.replace("{symbol}", symbol or "").replace("{interval}", interval or "") for p in base.paths]
    if isinstance(base, SyntheticSource) and symbol != base.symbol:
        data["seed"] = base.seed + position  # each synthetic symbol its own market
    return type(base).model_validate(data)


def task_key(cfg: RunConfig) -> str:
    """sha256 of what shapes an entry: the data a source names (for files, their sizes and times),
    the feature, label and validation settings, and the candleflow version."""
    src = cfg.source
    if isinstance(src, FilesSource):
        from candleflow.data.sources.files import expand_paths

        files = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in expand_paths(src.paths)]
        source: Any = {
            "kind": "files",
            "files": files,
            "format": src.format,
            "symbol": src.symbol,
            "interval": src.interval,
            "adjust": src.adjust,  # back-adjusted prices are other data
            "timezone": src.timezone,
        }
    elif isinstance(src, BinanceSource):
        source = src.model_dump(include={"kind", "market", "symbol", "interval", "start", "end"})
    elif isinstance(src, YFinanceSource):
        source = src.model_dump(include={"kind", "tickers", "interval", "start", "end", "auto_adjust", "prepost"})
    else:
        source = src.model_dump(mode="json")
    blob = json.dumps(
        {
            "source": source,
            "features": cfg.features.model_dump(mode="json"),
            "labels": {**cfg.labels.model_dump(mode="json"), "floor": cfg.labels.floor},
            "validation": cfg.validation.model_dump(mode="json"),
            "candleflow": __version__,
            "context": list(CONTEXT),  # the baselines' columns an entry stores
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


__all__ = ["BuildTask", "plan_tasks", "task_key"]
