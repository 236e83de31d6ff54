"""`candleflow cache list` and `cache prune`: candleflow's caches (downloads, prepared data, store
copies) with their sizes and counts, pruned to a cap. The folders come from the config
(`RunConfig.cache_folders`), the listing and pruning from `candleflow.fs.caches`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candleflow.cli.common import ConfigOpt, SetOpt, cache_app, console, log_file_for, setup_logging

KindOpt = Annotated[
    list[str] | None,
    typer.Option("--kind", help="binance, yfinance, prepared or stores; repeat for more (default: all)"),
]
FolderOpt = Annotated[
    Path | None, typer.Option("--folder", help="this folder instead of the config's (with exactly one --kind)")
]


def _cache_targets(config: Path | None, set_: list[str] | None, kinds: list[str] | None, folder: Path | None):
    """(config, [(kind, folder or None)]) for the cache commands: --kind and --folder parsed, the
    folders the config's."""
    from candleflow.config import load_config
    from candleflow.fs.caches import KINDS

    cfg = load_config(config, set_)
    setup_logging(log_file=log_file_for(cfg, "cache"))
    unknown = [k for k in kinds or [] if k not in KINDS]
    if unknown:
        raise typer.BadParameter(f"--kind {unknown[0]}: expected one of {', '.join(KINDS)}")
    chosen = list(dict.fromkeys(kinds)) if kinds else list(KINDS)
    folders = cfg.cache_folders()
    if folder is not None:
        if len(chosen) != 1:
            raise typer.BadParameter("--folder needs exactly one --kind (which layout the folder has)")
        folders[chosen[0]] = folder.expanduser()
    return cfg, [(k, folders[k]) for k in chosen]


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


@cache_app.command("list")
def cache_list(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    kind: KindOpt = None,
    folder: FolderOpt = None,
    entries_: Annotated[
        int, typer.Option("--entries", help="also list each cache's N least recently used entries")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Each cache's folder, entries, size against its cap, and hit/miss/evicted counts."""
    from candleflow.fs.caches import entries, marker_kind, require_cache, summarize

    cfg, targets = _cache_targets(config, set_, kind, folder)
    cap = cfg.cache.max_gb
    rows = []
    for k, root in targets:
        if root is None:
            rows.append({"cache": k, "folder": None, "note": "off (dataset.cache_dir unset)"})
            continue
        if folder is not None:
            require_cache(k, root)  # a folder asked for by name must be a cache
        elif root.exists() and marker_kind(root) != k:
            rows.append({"cache": k, "folder": None, "note": f"{root}: no candleflow cache marker (nothing listed)"})
            continue
        s = summarize(k, root)
        row = {
            "cache": k,
            "folder": str(root),
            "entries": s.entries,
            "bytes": s.bytes,
            "max_gb": cap,
            "hits": s.hits,
            "misses": s.misses,
            "evicted": s.evicted,
            "least_recently_used": s.oldest,
            "most_recently_used": s.newest,
        }
        if entries_ > 0:
            row["lru_entries"] = [
                {"path": str(e.path), "bytes": e.bytes, "last_used": e.last_used} for e in entries(k, root)[:entries_]
            ]
        rows.append(row)
    if as_json:
        console.print(json.dumps(rows, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    console.print(_cache_table(rows, cap))
    for r in rows:
        for e in r.get("lru_entries", []):
            console.print(
                f"{r['cache']}: {_when(e['last_used'])}  {e['bytes'] / 1e6:10.1f} MB  {e['path']}",
                markup=False,
                highlight=False,
            )


def _cache_table(rows: list[dict], cap: float | None) -> Table:
    """The caches as a table: folder, entries, size, hits, misses, hit rate, evictions, uses."""
    t = Table(title=f"candleflow caches (cap per cache: {'none' if cap is None else f'{cap:g} GB'})")
    cols = ("cache", "folder", "entries", "GB", "hits", "misses", "hit rate", "evicted", "oldest use", "latest use")
    for col in cols:
        t.add_column(col, justify="left" if col in ("cache", "folder") else "right", overflow="fold")
    for r in rows:
        if r["folder"] is None:
            t.add_row(r["cache"], r["note"], *["-"] * 8)
            continue
        looked = r["hits"] + r["misses"]
        t.add_row(
            r["cache"],
            r["folder"],
            f"{r['entries']:,}",
            f"{r['bytes'] / 1e9:.3f}",
            f"{r['hits']:,}",
            f"{r['misses']:,}",
            f"{r['hits'] / looked:.0%}" if looked else "-",
            f"{r['evicted']:,}",
            _when(r["least_recently_used"]),
            _when(r["most_recently_used"]),
        )
    return t


@cache_app.command("prune")
def cache_prune(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    kind: KindOpt = None,
    folder: FolderOpt = None,
    max_gb: Annotated[
        float | None,
        typer.Option("--max-gb", min=0, help="shrink each cache to this many GB (default: cache.max_gb; 0 empties)"),
    ] = None,
    older_than: Annotated[
        float | None, typer.Option("--older-than", min=0, help="also remove entries unused for this many days")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would go, remove nothing")] = False,
) -> None:
    """Remove least recently used entries until each cache is within its cap (or --max-gb)."""
    from candleflow.fs.caches import gb_to_bytes, prune

    cfg, targets = _cache_targets(config, set_, kind, folder)
    limit = gb_to_bytes(cfg.cache.max_gb if max_gb is None else max_gb)
    age = None if older_than is None else older_than * 86400.0
    verb = "would remove" if dry_run else "removed"
    # a folder named with --folder must exist; a config's folder that was never written is empty
    chosen = [(k, root) for k, root in targets if root is not None and (folder is not None or root.exists())]
    for k, root, gone in prune(chosen, limit, age, dry_run):
        console.print(
            f"{k} ({root}): {verb} {len(gone):,} entries, {sum(e.bytes for e in gone) / 1e9:.3f} GB",
            markup=False,
            highlight=False,
        )
        if dry_run:
            for e in gone:
                console.print(f"  {e.path}", markup=False, highlight=False)
