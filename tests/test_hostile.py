"""Hostile and careless input through the CLI: a generated corpus of malformed files, archives,
configs and arguments. Each case must end in one clear error line with exit code 2 (and nothing
written that looks complete) or in a correct result: no traceback, no hang, bounded memory.

The corpus runs in one subprocess (tests/hostile_runner.py) so imports are paid once."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
MEMORY_CAP_MB = 3000  # the runner's peak resident memory over the whole corpus
H_MS = 3_600_000
T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
PREPARE = [
    "prepare",
    "--set",
    "source.kind=files",
    "--set",
    "dataset.window=8",
    "--set",
    "labels.horizon=4",
    "--set",
    "dataset.batch_size=8",
]


@dataclass
class Case:
    id: str
    args: list[str]
    expect: str  # "error" (exit 2, one line) or "ok" (exit 0)
    files: dict[str, bytes] = field(default_factory=dict)  # written under the case folder before it runs
    contains: str = ""  # the error line (or stdout for "ok") must contain this
    lacks: str = ""  # and stdout (an "ok" case) must not
    limit_s: int = 60


def ohlcv(n: int = 300, t0: int = T0_MS, step: int = H_MS, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    return {
        "open_time": t0 + step * np.arange(n, dtype=np.int64),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": rng.uniform(1, 10, n),
    }


def csv_bytes(cols: dict[str, np.ndarray], header: bool = True) -> bytes:
    names = list(cols)
    lines = [",".join(names)] if header else []
    for i in range(len(next(iter(cols.values())))):
        lines.append(",".join(str(cols[k][i]) for k in names))
    return ("\n".join(lines) + "\n").encode()


def binance_csv(n: int = 300, t0: int = T0_MS) -> bytes:
    c = ohlcv(n, t0)
    rows = []
    for i in range(n):
        t = int(c["open_time"][i])
        rows.append(
            f"{t},{c['open'][i]:.2f},{c['high'][i]:.2f},{c['low'][i]:.2f},{c['close'][i]:.2f},{c['volume'][i]:.4f},"
            f"{t + H_MS - 1},1000.0,10,0.5,50.0,0"
        )
    return ("\n".join(rows) + "\n").encode()


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def patch_zip(data: bytes, flag: int | None = None, method: int | None = None, size: int | None = None) -> bytes:
    """Rewrite fields of the first member's local and central headers (flag bits, method, size)."""
    b = bytearray(data)
    local = b.find(b"PK\x03\x04")
    central = b.find(b"PK\x01\x02")
    if flag is not None:
        struct.pack_into("<H", b, local + 6, flag)
        struct.pack_into("<H", b, central + 8, flag)
    if method is not None:
        struct.pack_into("<H", b, local + 8, method)
        struct.pack_into("<H", b, central + 10, method)
    if size is not None:
        struct.pack_into("<I", b, local + 22, size)
        struct.pack_into("<I", b, central + 24, size)
    return bytes(b)


def arrow_bytes(table: pa.Table, kind: str) -> bytes:
    buf = io.BytesIO()
    (pq.write_table if kind == "parquet" else feather.write_feather)(table, buf)
    return buf.getvalue()


def file_case(id: str, name: str, data: bytes, expect: str = "error", contains: str = "", extra=()) -> Case:
    return Case(id, [*PREPARE, "--set", f"source.paths=[in/{name}]", *extra], expect, {f"in/{name}": data}, contains)


def corpus() -> list[Case]:
    good = ohlcv()
    cases: list[Case] = []
    add = cases.append

    # --- CSV files ---
    add(file_case("csv-good", "good.csv", csv_bytes(good), "ok", "rows"))
    add(file_case("csv-empty", "empty.csv", b"", contains="empty"))
    add(file_case("csv-whitespace", "blank.csv", b"\n\n  \n"))
    add(file_case("csv-header-only", "head.csv", b"open_time,open,high,low,close,volume\n"))
    add(
        file_case(
            "csv-no-close",
            "noclose.csv",
            csv_bytes({k: v for k, v in good.items() if k != "close"}),
            "error",
            "no 'close' column",
        )
    )
    add(
        file_case(
            "csv-no-time",
            "notime.csv",
            csv_bytes({k: v for k, v in good.items() if k != "open_time"}),
            "error",
            "no time column",
        )
    )
    dup = csv_bytes(good).replace(b"volume\n", b"close\n", 1)
    add(file_case("csv-duplicate-column", "dup.csv", dup, "error", "appears twice"))
    bad_num = csv_bytes(good).replace(
        b"\n" + str(good["open_time"][5]).encode() + b",", b"\n" + str(good["open_time"][5]).encode() + b",abc", 1
    )
    add(file_case("csv-text-price", "text.csv", bad_num))
    empty_time = csv_bytes(good).replace(b"\n" + str(good["open_time"][7]).encode() + b",", b"\n,", 1)
    add(file_case("csv-empty-time-cell", "notime7.csv", empty_time, "error", "line 9: column 'open_time' is empty"))
    far = dict(good, open_time=good["open_time"] * 0 + 9_999_999_999_999_999 + np.arange(300) * 3_600_000)
    add(file_case("csv-after-2262", "far.csv", csv_bytes(far), "error", "2262"))
    add(file_case("csv-negative-price", "neg.csv", csv_bytes(dict(good, low=-good["low"])), "error", "expected"))
    nan = dict(good, close=np.where(np.arange(300) == 50, np.nan, good["close"]))
    add(file_case("csv-nan-price", "nan.csv", csv_bytes(nan), "error", "line"))
    inf = dict(good, high=np.where(np.arange(300) == 60, np.inf, good["high"]))
    add(file_case("csv-inf-price", "inf.csv", csv_bytes(inf), "error", "line"))
    swap = dict(good, high=good["low"], low=good["high"])
    add(file_case("csv-high-below-low", "swap.csv", csv_bytes(swap), "error", "high="))
    order = {k: np.r_[v[:100], v[150:200], v[100:150], v[200:]] for k, v in good.items()}
    add(file_case("csv-out-of-order-repaired", "order.csv", csv_bytes(order), "ok", "rows"))
    dups = {k: np.r_[v, v[10:20]] for k, v in good.items()}
    add(file_case("csv-duplicates-dropped", "dups.csv", csv_bytes(dups), "ok", "rows"))
    add(
        file_case(
            "csv-misaligned",
            "mis.csv",
            csv_bytes(dict(good, open_time=good["open_time"] + np.where(np.arange(300) == 30, 17, 0))),
            "error",
            "grid",
        )
    )
    add(file_case("csv-binary-garbage", "garbage.csv", bytes(range(256)) * 40))
    add(file_case("csv-utf16", "u16.csv", csv_bytes(good).decode().encode("utf-16")))
    add(
        file_case(
            "csv-huge-cell", "huge.csv", b"open_time,open,high,low,close,volume\n" + b"1" * 2_000_000 + b",1,1,1,1,1\n"
        )
    )
    ragged = csv_bytes(good).replace(
        b"\n" + str(good["open_time"][3]).encode(), b"\n1,2\n" + str(good["open_time"][3]).encode(), 1
    )
    add(file_case("csv-ragged-row", "ragged.csv", ragged))
    iso_bad = b"date,open,high,low,close,volume\n2024-13-45,1,1,1,1,1\n2024-13-46,1,1,1,1,1\n"
    add(file_case("csv-bad-iso-date", "iso.csv", iso_bad, "error", "not ISO dates"))
    mixed = b"time,open,high,low,close,volume\n1704067200000,1,1,1,1,1\nyesterday,1,1,1,1,1\n"
    add(file_case("csv-mixed-time-types", "mixed.csv", mixed))
    add(file_case("csv-three-rows", "three.csv", csv_bytes({k: v[:3] for k, v in good.items()}), "error", "window"))
    add(file_case("csv-headerless-3-columns", "h3.csv", b"1,2,3\n4,5,6\n", "error", "columns without a header"))
    latin = b"open_time,op\xe9n,high,low,close,volume\n1,1,1,1,1,1\n"
    add(file_case("csv-latin1-header", "latin.csv", latin))
    add(file_case("csv-unknown-suffix", "prices.xlsx", b"PK", "error", "unknown file type"))
    early = ohlcv(300, t0=0)
    add(file_case("csv-early-1970-milliseconds", "early.csv", csv_bytes(early), "ok", "1970-01-03T07"))
    secs = dict(good, open_time=good["open_time"] // 1000)
    add(file_case("csv-seconds", "secs.csv", csv_bytes(secs), "ok", "2024-01-03T07"))
    micros = dict(good, open_time=good["open_time"] * 1000)
    add(file_case("csv-microseconds", "micros.csv", csv_bytes(micros), "ok", "2024-01-03T07"))
    add(
        file_case(
            "csv-quoted-numbers", "quoted.csv", csv_bytes(good).replace(b",", b'","').replace(b"\n", b'"\n"')[:-1]
        )
    )
    add(
        Case(
            "csv-two-symbols",
            [*PREPARE, "--set", "source.paths=[in/BTCUSDT-1h-2024-01.csv, in/ETHUSDT-1h-2024-02.csv]"],
            "error",
            {
                "in/BTCUSDT-1h-2024-01.csv": binance_csv(),
                "in/ETHUSDT-1h-2024-02.csv": binance_csv(t0=T0_MS + 300 * H_MS),
            },
            "two symbols: BTCUSDT",
        )
    )
    add(Case("path-missing", [*PREPARE, "--set", "source.paths=[in/nothere.csv]"], "error", {}, "not found"))
    add(Case("glob-matches-nothing", [*PREPARE, "--set", "source.paths=[in/*.csv]"], "error", {"in/x.txt": b"1"}))
    add(Case("path-is-folder", [*PREPARE, "--set", "source.paths=[in/dir.csv]"], "error", {"in/dir.csv/a": b"1"}))

    # --- Parquet and Feather ---
    t = pa.table({k: pa.array(v) for k, v in good.items()})
    add(file_case("parquet-good", "good.parquet", arrow_bytes(t, "parquet"), "ok", "rows"))
    add(file_case("feather-good", "good.feather", arrow_bytes(t, "feather"), "ok", "rows"))
    add(file_case("parquet-is-csv-text", "fake.parquet", csv_bytes(good), "error", "cannot read as parquet"))
    add(file_case("feather-truncated", "cut.feather", arrow_bytes(t, "feather")[:500]))
    add(file_case("parquet-truncated", "cut.parquet", arrow_bytes(t, "parquet")[:-100]))
    strp = t.set_column(4, "close", pa.array([f"x{i}" for i in range(300)]))
    add(file_case("parquet-string-prices", "str.parquet", arrow_bytes(strp, "parquet"), "error", "non-numeric"))
    ts = pa.array(np.datetime64("3000-01-01", "ms") + np.arange(300) * np.timedelta64(1, "h"))
    add(
        file_case(
            "parquet-year-3000",
            "y3000.parquet",
            arrow_bytes(t.set_column(0, "open_time", ts), "parquet"),
            "error",
            "2262",
        )
    )
    add(file_case("parquet-no-rows", "none.parquet", arrow_bytes(t.slice(0, 0), "parquet")))
    nulls = pa.array([None if i == 4 else int(v) for i, v in enumerate(good["open_time"])], pa.int64())
    add(
        file_case(
            "parquet-null-time",
            "null.parquet",
            arrow_bytes(t.set_column(0, "open_time", nulls), "parquet"),
            "error",
            "line 5",
        )
    )
    dupt = pa.table([pa.array(good[k]) for k in good] + [pa.array(good["close"])], names=[*good, "close"])
    add(file_case("feather-duplicate-column", "dup.feather", arrow_bytes(dupt, "feather"), "error", "appears twice"))
    add(file_case("parquet-empty-file", "zero.parquet", b""))

    # --- ZIP archives ---
    name = "BTCUSDT-1h-2024-01.zip"
    good_zip = zip_bytes({"BTCUSDT-1h-2024-01.csv": binance_csv()})
    add(file_case("zip-good", name, good_zip, "ok", "rows"))
    add(file_case("zip-no-csv", name, zip_bytes({"readme.txt": b"hi"}), "error", "found 0"))
    add(file_case("zip-two-csv", name, zip_bytes({"a.csv": binance_csv(), "b.csv": binance_csv()}), "error", "found 2"))
    bomb = zip_bytes({"BTCUSDT-1h-2024-01-01.csv": b"0" * 20_000_000})
    add(file_case("zip-bomb-daily", "BTCUSDT-1h-2024-01-01.zip", bomb, "error", "ZIP bomb"))
    add(file_case("zip-encrypted", name, patch_zip(good_zip, flag=0x1), "error", "encrypted"))
    add(file_case("zip-unknown-method", name, patch_zip(good_zip, method=99), "error", "compression method 99"))
    add(
        file_case(
            "zip-bzip2", name, zip_bytes({"x.csv": binance_csv()}, zipfile.ZIP_BZIP2), "error", "compression method 12"
        )
    )
    corrupt = bytearray(good_zip)
    mid = len(corrupt) // 2
    corrupt[mid : mid + 64] = bytes(64)
    add(file_case("zip-corrupt-deflate", name, bytes(corrupt), "error", "damaged"))
    add(file_case("zip-size-lies", name, patch_zip(good_zip, size=1000), "error", "damaged"))
    add(file_case("zip-truncated", name, good_zip[: len(good_zip) // 2]))
    add(file_case("zip-zero-bytes", name, b""))
    add(file_case("zip-traversal-member", name, zip_bytes({"../../evil.csv": binance_csv()}), "ok", "rows"))
    add(file_case("zip-of-zip", name, zip_bytes({"inner.zip": good_zip}), "error", "found 0"))
    add(file_case("zip-csv-garbage", name, zip_bytes({"x.csv": os.urandom(5000)})))

    # --- configs ---
    def cfg_case(id: str, text: bytes, contains: str = "", args=("prepare",)) -> Case:
        return Case(id, [*args, "--config", "in/c.yaml"], "error", {"in/c.yaml": text}, contains)

    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)
    ]
    bomb_yaml = "\n".join(["bombs:", *("  " + line for line in levels), "labels: {tp: *i}"]).encode()
    add(cfg_case("yaml-alias-bomb", bomb_yaml))
    alias_in_key = "\n".join([*levels, "labels: {tp: *i}"]).encode()
    add(cfg_case("yaml-alias-bomb-value", alias_in_key, "labels.tp"))
    add(cfg_case("yaml-list", b"- a\n- b\n", "expected a mapping"))
    add(cfg_case("yaml-syntax", b"labels: {horizon: [\n", "not valid YAML"))
    add(cfg_case("yaml-unknown-section", b"labelz: {}\n", "'labelz' is not known"))
    add(cfg_case("yaml-unknown-key", b"labels: {tpp: 1}\n", "labels.tpp"))
    add(cfg_case("yaml-wrong-type", b"dataset: {window: abc}\n", "dataset.window"))
    add(cfg_case("yaml-negative-horizon", b"labels: {horizon: -3}\n", "labels.horizon"))
    add(cfg_case("yaml-fraction-too-big", b"dataset: {val_fraction: 1.5}\n", "dataset.val_fraction"))
    add(cfg_case("yaml-run-name-escapes", b"output: {name: ../../x}\n", "output.name"))
    add(cfg_case("yaml-symbol-escapes", b"source: {kind: binance, symbol: ../../etc}\n", "source.symbol"))
    add(cfg_case("yaml-unknown-kind", b"source: {kind: ftp}\n", "source"))
    add(cfg_case("yaml-binary", os.urandom(300) + b"\x00"))
    add(Case("yaml-is-folder", ["prepare", "--config", "in/cfgdir"], "error", {"in/cfgdir/x": b"1"}))
    add(cfg_case("yaml-huge-int", b"source: {n_bars: 1000000000000000000000000000000}\n", "source.n_bars"))
    add(cfg_case("yaml-unknown-feature", b"features: {names: [log_return, astrology]}\n", "astrology"))
    add(cfg_case("yaml-interval-1mo", b"source: {kind: synthetic, interval: 1mo}\n", "1mo"))
    add(cfg_case("yaml-interval-banana", b"source: {kind: synthetic, interval: banana}\n", "banana"))
    add(cfg_case("yaml-probabilities", b"rewards: {position_probs: [0.9, 0.9, 0.9]}\n", "sum to 1"))
    add(cfg_case("yaml-python-tag", b"labels: !!python/object/apply:os.system [echo hi]\n", "not valid YAML"))
    add(cfg_case("yaml-markup-symbol", b"source: {symbol: '[/]'}\n", "source.symbol"))
    add(
        Case(
            "csv-horizon-longer-than-data",
            [*PREPARE, "--set", "source.paths=[in/good.csv]", "--set", "labels.horizon=290"],
            "error",
            {"in/good.csv": csv_bytes(good)},
        )
    )
    add(
        Case(
            "purge-empties-training",
            [
                "prepare",
                "--set",
                "source.n_bars=400",
                "--set",
                "dataset.window=8",
                "--set",
                "labels.horizon=300",
                "--set",
                "dataset.val_fraction=0.5",
                "--set",
                "labels.kind=fixed_horizon",
            ],
            "error",
            contains="0 windows",
        )
    )

    # --- command-line arguments ---
    small = ["--set", "source.n_bars=1500"]
    add(Case("set-without-equals", ["prepare", "--set", "labels.horizon"], "error", {}, "expected key=value"))
    add(Case("set-bad-yaml", ["prepare", "--set", "labels.horizon=[[["], "error"))
    add(Case("set-into-scalar", ["prepare", "--set", "labels.horizon.x=1"], "error", {}, "labels.horizon"))
    add(Case("unknown-option", ["prepare", "--bogus"], "error", {}, "No such option"))
    add(Case("unknown-command", ["frobnicate"], "error", {}, "No such command"))
    add(Case("images-part-foo", ["images", *small, "--part", "foo"], "error", {}, "part 'foo'"))
    add(Case("images-limit-0", ["images", *small, "--limit", "0"], "error", {}, "limit 0"))
    add(Case("images-limit-text", ["images", *small, "--limit", "abc"], "error", {}, "--limit"))
    add(Case("images-mode-weird", ["images", *small, "--mode", "weird"], "error", {}, "images.mode"))
    add(Case("images-format-gif", ["images", *small, "--format", "gif"], "error", {}, "images.format"))
    for target, label in ((".", "dot"), ("..", "dotdot"), ("/", "root")):
        add(
            Case(
                f"images-out-{label}",
                ["images", *small, "--limit", "4", "--format", "png", "--out", target],
                "error",
                {},
                "refusing",
            )
        )
    add(
        Case(
            "images-out-home",
            ["images", *small, "--limit", "4", "--format", "png", "--out", "HOME"],
            "error",
            {},
            "home folder",
        )
    )
    keep = {"keep/mine.txt": b"precious"}
    add(
        Case(
            "images-out-user-folder",
            ["images", *small, "--limit", "4", "--format", "png", "--out", "keep"],
            "error",
            keep,
            "not empty",
        )
    )
    add(
        Case(
            "images-out-user-folder-overwrite",
            ["images", *small, "--limit", "4", "--format", "png", "--out", "keep", "--overwrite"],
            "error",
            keep,
            "not written by candleflow",
        )
    )
    add(
        Case(
            "images-out-existing-file",
            ["images", *small, "--limit", "4", "--format", "npz", "--out", "mine.npz"],
            "error",
            {"mine.npz": b"mine"},
            "exists",
        )
    )
    add(
        Case(
            "images-good",
            ["images", *small, "--limit", "4", "--format", "npz", "--out", "imgs.npz"],
            "ok",
            {},
            "4 jkx images",
        )
    )
    add(Case("rewards-n-0", ["rewards", *small, "--n", "0"], "error", {}, "--n"))
    add(
        Case(
            "rewards-out-txt",
            ["rewards", *small, "--n", "10", "--out", "r.txt"],
            "error",
            {},
            ".npz, .parquet or .zarr",
        )
    )
    add(
        Case(
            "rewards-out-existing",
            ["rewards", *small, "--n", "10", "--out", "r.npz"],
            "error",
            {"r.npz": b"mine"},
            "exists",
        )
    )
    add(
        Case(
            "rewards-out-dot-zarr-user",
            ["rewards", *small, "--n", "10", "--out", "keep.zarr"],
            "error",
            {"keep.zarr/mine.txt": b"x"},
            "not empty",
        )
    )
    add(Case("rewards-good", ["rewards", *small, "--n", "10", "--out", "r.parquet"], "ok", {}, "written: r.parquet"))
    dl = [
        "download",
        "--start",
        "2024-01",
        "--end",
        "2024-01",
        "--base-url",
        "http://127.0.0.1:9",
        "--cache-dir",
        "cache",
    ]
    add(Case("download-symbol-escapes", [*dl, "--symbol", "../.."], "error", {}, "--symbol '../..'"))
    add(Case("download-symbol-markup", [*dl, "--symbol", "[/]"], "error", {}, "--symbol '[/]'"))
    add(
        Case(
            "download-concurrency",
            [*dl, "--symbol", "BTCUSDT", "--concurrency", "999"],
            "error",
            {},
            "--concurrency 999",
        )
    )
    add(
        Case(
            "download-bad-month",
            ["download", "--symbol", "BTCUSDT", "--start", "2024-13", "--end", "2024-14"],
            "error",
            {},
            "2024-13",
        )
    )
    add(Case("download-interval-1mo", [*dl, "--symbol", "BTCUSDT", "--interval", "1mo"], "error", {}, "1mo"))
    add(Case("download-no-symbol", ["download", "--start", "2024-01", "--end", "2024-02"], "error", {}, "--symbol"))
    add(Case("resume-unknown", ["train", "--resume", "nothing-here"], "error", {}, "nothing-here"))
    add(Case("models-show-unknown", ["models", "show", "nothing-here"], "error", {}, "nothing-here"))
    add(Case("report-unknown", ["report", "nothing-here"], "error", {}, "nothing-here"))
    add(Case("export-missing-file", ["export", "in/model.keras"], "error", {}, "model.keras"))
    add(Case("export-not-a-model", ["export", "in/model.keras"], "error", {"in/model.keras": b"PK not a zip"}))
    add(Case("compare-unknown", ["compare", "a", "b"], "error", {}, "a"))
    damaged_run = {
        "runs/r1/config.yaml": b"task: classify\n",
        "runs/r1/metadata.json": b"{not json",
        "runs/r1/metrics.json": b"{}",
        "runs/r1/model.keras": b"x",
        "runs/r1/data.json": b"{}",
    }
    add(Case("models-show-damaged-metadata", ["models", "show", "r1"], "error", damaged_run, "metadata.json"))
    add(Case("models-list-damaged-metadata", ["models", "list"], "ok", damaged_run, "damaged: runs/r1/metadata.json"))
    add(Case("report-damaged-run", ["report", "r1"], "error", damaged_run))

    # --- stores written by someone else ---
    store = ["prepare", "--store", "store", "--set", "source.n_bars=1500", "--workers", "1"]
    evil = {
        "format": 1,
        "updated": None,
        "entries": {"../../evil": {"name": "../../evil", "version": "0" * 16 + "-" + "0" * 8}},
    }
    add(
        Case(
            "store-manifest-escaping-name",
            store,
            "error",
            {"store/manifest.json": json.dumps(evil).encode()},
            "not a safe name",
        )
    )
    add(Case("store-manifest-not-json", store, "error", {"store/manifest.json": b"\x00\x01"}, "not valid JSON"))
    badver = {"format": 1, "updated": None, "entries": {"x": {"name": "x", "version": "../../../tmp", "files": {}}}}
    add(
        Case(
            "store-manifest-escaping-version",
            store,
            "error",
            {"store/manifest.json": json.dumps(badver).encode()},
            "version",
        )
    )
    # outputs that are URLs: refused in one line, never a local folder named after the scheme
    small = ["--set", "source.n_bars=400", "--set", "dataset.window=8", "--set", "labels.horizon=4"]
    for cmd, url in (("predict", "s3://nope/x.parquet"), ("export", "memory://x"), ("images", "s3://b/i.h5")):
        args = {"predict": ["predict", "nope"], "export": ["export", "nope"], "images": ["images", *small]}[cmd]
        add(Case(f"{cmd}-out-url", [*args, "--out", url], "error", {}, f"--out '{url}': a URL"))
    add(Case("rewards-out-url", ["rewards", *small, "--out", "memory://r.npz"], "error", {}, "a URL"))
    # a files source set over the default synthetic one replaces it (its n_bars means nothing to files)
    add(
        Case(
            "source-kind-replaced",
            ["prepare", "--set", "source.n_bars=500", "--set", "source.kind=files", "--set", "source.paths=[in/g.csv]"],
            "ok",
            {"in/g.csv": csv_bytes(ohlcv(400))},
        )
    )
    boolean_volume = pa.table({**{k: v for k, v in ohlcv(300).items() if k != "volume"}, "volume": [True] * 300})
    buf = io.BytesIO()
    pq.write_table(boolean_volume, buf)
    add(
        Case(
            "parquet-boolean-volume",
            [*PREPARE, "--set", "source.paths=[in/b.parquet]"],
            "error",
            {"in/b.parquet": buf.getvalue()},
            "column 'volume' holds booleans",
        )
    )
    import gzip

    spy = (HERE / "sample" / "data" / "stocks" / "SPY-1d.csv").read_bytes()
    add(
        Case(
            "daily-file-as-hourly",
            [*PREPARE, "--set", "source.paths=[in/SPY-1d.csv]", "--set", "source.interval=1h"],
            "error",
            {"in/SPY-1d.csv": spy},
            "the bars are 1d apart, not 1h",
        )
    )
    mixed = binance_csv(100).decode().splitlines()
    mixed = [
        ",".join([str(int(f[0]) * 1000), *f[1:6], str(int(f[6]) * 1000), *f[7:]]) if i >= 50 else line
        for i, (line, f) in enumerate((line, line.split(",")) for line in mixed)
    ]
    add(
        Case(
            "csv-mixed-ms-us",
            [*PREPARE, "--set", "source.paths=[in/BTCUSDT-1h-2024-01.csv]"],
            "error",
            {"in/BTCUSDT-1h-2024-01.csv": ("\n".join(mixed) + "\n").encode()},
            "line 51: open_time=",
        )
    )
    add(Case("walkforward-no-families", ["walkforward", "--families", ""], "error", {}, "--families is empty"))
    # a layout with no study is refused, never studied as the one series its source names
    universe = ["walkforward", "--set", "universe.symbols=[AAA,BBB]"]
    add(Case("walkforward-universe-classes", universe, "error", {}, "a universe's classes (labels.kind competitive)"))
    reward = ["walkforward", "--set", "task=reward", "--set", "training.monitor=val_loss"]
    add(Case("walkforward-reward", reward, "error", {}, "a reward model (task reward) has no study"))
    add(Case("images-height-huge", ["images", "--set", "images.height=100000000"], "error", {}, "images.height"))

    add(
        Case(
            "base-url-relative-file",
            [
                "download",
                "--symbol",
                "BTCUSDT",
                "--start",
                "2024-01",
                "--end",
                "2024-01",
                "--base-url",
                "file://shared/data",
            ],
            "error",
            {},
            "file:///path/to/mirror",
        )
    )
    add(
        Case(
            "tune-param-reversed",
            ["tune", "-p", "training.learning_rate={low: 1, high: 0.1}"],
            "error",
            {},
            "low <= high",
        )
    )
    add(
        Case(
            "tune-param-log-zero",
            ["tune", "-p", "training.learning_rate={low: 0, high: 0.1, log: true}"],
            "error",
            {},
            "low > 0",
        )
    )

    add(
        Case(
            "csv-gz-read",
            [*PREPARE, "--set", "source.paths=[in/g.csv.gz]"],
            "ok",
            {"in/g.csv.gz": gzip.compress(csv_bytes(ohlcv(300)))},
        )
    )
    add(
        Case(
            "csv-gz-damaged",
            [*PREPARE, "--set", "source.paths=[in/d.csv.gz]"],
            "error",
            {"in/d.csv.gz": b"\x1f\x8b\x08garbage"},
            "not a readable gzip file",
        )
    )
    add(
        Case(
            "set-unquoted-glob-list",
            ["prepare", "--set", "source.paths=[in/{symbol}-*.csv]"],
            "error",
            {},
            "not valid YAML",
        )
    )
    add(
        Case(
            "log-dir-is-a-file",
            ["prepare", "--set", "output.log_dir=in/f.txt"],
            "error",
            {"in/f.txt": b"x"},
            "output.log_dir",
        )
    )
    add(Case("config-boolean-number", ["prepare", "--set", "labels.tp=true"], "error", {}, "'labels.tp' = true"))
    add(
        Case(
            "config-boolean-in-named-source",
            ["prepare", "--set", "universe.sources={a: {n_bars: true}}"],
            "error",
            {},
            "'universe.sources.a.n_bars' = true",
        )
    )
    add(
        Case(
            "cache-list-missing-folder",
            ["cache", "list", "--kind", "prepared", "--folder", "nope"],
            "error",
            {},
            "nope: not a candleflow prepared cache",
        )
    )
    # issue 42: the regression targets through prepare's and inspect's text output
    for cmd in ("prepare", "inspect"):
        for target in ("volatility", "forward_return"):
            add(
                Case(
                    f"{cmd}-text-{target}",
                    [cmd, "--set", "source.n_bars=600", "--set", "dataset.window=16", "--set", f"labels.kind={target}"],
                    "ok",
                    {},
                    "median" if cmd == "prepare" else "finite targets",
                )
            )
    # issue 42: a one-day bad print (a close at 1/10 while the bar's open, high, low are normal) is
    # reported as such and never read as a split, under each ohlc policy
    printed = ohlcv(300, t0=T0_MS, step=24 * H_MS)
    printed["close"][150] /= 10
    bad_print = {"in/p.csv": csv_bytes(printed)}
    daily = [*PREPARE, "--set", "source.paths=[in/p.csv]", "--set", "validation.calendar=24/7"]
    add(
        Case("bad-print-error", [*daily, "--set", "validation.splits=adjust"], "error", bad_print, "a bad print: close")
    )
    add(
        Case(
            "bad-print-repaired-not-a-split",
            [*daily, "--set", "validation.splits=adjust", "--set", "validation.ohlc=repair"],
            "ok",
            bad_print,
            "1 bad prints",
            lacks="suspected split",
        )
    )
    # issue 42: the rest of the audit, each a case
    add(
        Case(
            "shuffle-blocks-too-few",
            ["prepare", "--set", "source.n_bars=600", "--set", "labels.shuffle_blocks=400"],
            "error",
            {},
            "labels.shuffle_blocks=400 (blocks of 401, coprime with the week): the",
        )
    )
    for bad, said in (
        ("rsi(nan)", "parameter 'nan' is not a finite number"),
        ("rsi(inf)", "parameter 'inf' is not a finite number"),
        ("rsi(1e30)", "expected 1 .. 100,000 bars"),
        ("rsi(1000000000)", "rsi's parameter is 1000000000"),
        ("rsi(2.5)", "expected a whole number of bars"),
        ("linreg_slope(1)", "linreg_slope's parameter is 1; expected 2 .. 100,000 bars"),
    ):
        add(Case(f"feature-param-{bad}", ["prepare", "--set", f"features.names=['{bad}']"], "error", {}, said))
    add(
        Case(
            "tracking-uri-any-string",
            ["prepare", "--set", "output.tracking_uri=not a uri"],
            "error",
            {},
            "expected an MLflow tracking URI",
        )
    )
    add(
        Case(
            "tracking-uri-file-store",
            ["prepare", "--set", "output.tracking_uri=file:./mlruns"],
            "error",
            {},
            "use sqlite:///mlflow.db",
        )
    )
    add(
        Case(
            "min-order-above-capital",
            ["prepare", "--set", "backtest.capital=100", "--set", "backtest.min_order=500"],
            "error",
            {},
            "no order could ever be placed",
        )
    )
    adj = {k: v for k, v in ohlcv(300, step=24 * H_MS).items()}
    adj_lines = csv_bytes({**adj, "adj_close": adj["close"]}).decode().splitlines()
    adj_lines[0] = adj_lines[0].replace("adj_close", "Adj Close")
    adj_lines[120] = ",".join([*adj_lines[120].split(",")[:-1], "n/a"])
    add(
        Case(
            "adj-close-damaged",
            [*PREPARE, "--set", "source.paths=[in/a.csv]", "--set", "validation.calendar=24/7"],
            "error",
            {"in/a.csv": ("\n".join(adj_lines) + "\n").encode()},
            "line 121: the adjusted close is nan",
        )
    )
    add(
        Case(
            "tune-unknown-family",
            ["tune", "-p", "model.kind={choices: [foo]}", "--set", "source.n_bars=600"],
            "error",
            {},
            "tune space 'model.kind'",
        )
    )
    add(
        Case(
            "store-is-a-file",
            ["prepare", "--store", "in/f.txt", "--symbols", "AAA"],
            "error",
            {"in/f.txt": b"x"},
            "a file, not a folder",
        )
    )
    add(
        Case(
            "cache-dir-user-folder",
            ["prepare", "--set", "source.n_bars=600", "--set", "dataset.cache_dir=in"],
            "error",
            {"in/notes.txt": b"mine"},
            "a folder with files candleflow did not write",
        )
    )
    spy_late = spy.decode().replace("\r\n", "\n").splitlines()
    spy_late = [spy_late[0]] + [
        ",".join([str(np.datetime64(x.split(",")[0]) + 1), *x.split(",")[1:]]) for x in spy_late[1:] if x.strip()
    ]
    add(
        Case(
            "tuesday-to-saturday-daily",
            [*PREPARE, "--set", "source.paths=[in/late.csv]"],
            "error",
            {"in/late.csv": ("\n".join(spy_late) + "\n").encode()},
            "bars on Saturdays but never on Monday or Sunday",
        )
    )
    add(
        Case(
            "decision-margin-upper-case",
            ["prepare", "--set", "source.n_bars=600", "--set", "evaluation.decision_margin=AUTO"],
            "ok",
            {},
        )
    )
    add(
        Case(
            "decision-margin-word",
            ["prepare", "--set", "evaluation.decision_margin=often"],
            "error",
            {},
            "expected a margin 0 <= x < 1 or 'auto'",
        )
    )
    btc_1h = binance_csv(300)
    add(
        Case(
            "hourly-read-as-1m",
            [*PREPARE, "--set", "source.paths=[in/BTCUSDT-1h-2024-01.csv]", "--set", "source.interval=1m"],
            "error",
            {"in/BTCUSDT-1h-2024-01.csv": btc_1h},
            "the bars are 1h apart, not 1m",
        )
    )
    return cases


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _visible(folder: Path) -> set[str]:
    """Everything under folder that does not start with a dot (temporary and hidden names)."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    home.mkdir()
    cases = corpus()
    before: dict[str, set[str]] = {}
    specs = []
    for case in cases:
        folder = root / case.id
        folder.mkdir()
        _write(folder, case.files)
        args = [str(home) if a == "HOME" else a for a in case.args]
        specs.append({"id": case.id, "args": args, "cwd": str(folder), "limit_s": case.limit_s})
        before[case.id] = _visible(folder)
    (root / "cases.json").write_text(json.dumps(specs))
    env = dict(os.environ, HOME=str(home), CANDLEFLOW_LOG_DIR=str(root / "logs"), COLUMNS="200")
    subprocess.run(
        [sys.executable, str(HERE / "hostile_runner.py"), str(root / "cases.json"), str(root / "results.json")],
        env=env,
        check=True,
        timeout=1500,
    )
    results = {r["id"]: r for r in json.loads((root / "results.json").read_text())}
    return cases, results, root, before


def test_the_corpus_is_large_enough():
    cases = corpus()
    assert len(cases) >= 80
    assert len({c.id for c in cases}) == len(cases)


def test_every_case_ends_in_one_clear_line_or_a_correct_result(outcomes):
    cases, results, root, before = outcomes
    problems = []
    for case in cases:
        r = results[case.id]
        if r["traceback"] or r["timeout"]:
            problems.append(f"{case.id}: {'timed out' if r['timeout'] else r['traceback'][-600:]}")
            continue
        err_lines = [line for line in r["stderr"].splitlines() if line.strip()]
        errors = [line for line in err_lines if line.startswith("error: ")]
        if case.expect == "ok":
            if r["code"] != 0 or errors:
                problems.append(f"{case.id}: expected success, got exit {r['code']}: {r['stderr'][-300:]}")
            elif case.contains and case.contains not in r["stdout"]:
                problems.append(f"{case.id}: output lacks {case.contains!r}: {r['stdout'][-300:]}")
            elif case.lacks and case.lacks in r["stdout"]:
                problems.append(f"{case.id}: output holds {case.lacks!r}: {r['stdout'][-300:]}")
            continue
        if r["code"] != 2 or len(errors) != 1:
            problems.append(
                f"{case.id}: expected one error line and exit 2, got exit {r['code']}: {r['stderr'][-400:]}"
            )
            continue
        if "Traceback" in r["stderr"] or len(errors[0]) > 600:
            problems.append(f"{case.id}: error line not clear: {errors[0][:300]}")
        if case.contains and case.contains not in errors[0]:
            problems.append(f"{case.id}: error line lacks {case.contains!r}: {errors[0]}")
        new = _visible(root / case.id) - before[case.id]
        if new:
            problems.append(f"{case.id}: failed but wrote {sorted(new)[:5]}")
    assert not problems, "\n".join(problems)


def test_memory_stays_bounded(outcomes):
    _, results, _, _ = outcomes
    peak = max(r["peak_rss_mb"] for r in results.values())
    assert peak < MEMORY_CAP_MB, f"peak resident memory {peak:.0f} MB"


def test_user_files_survive(outcomes):
    _, _, root, _ = outcomes
    assert (root / "images-out-user-folder" / "keep" / "mine.txt").read_bytes() == b"precious"
    assert (root / "images-out-user-folder-overwrite" / "keep" / "mine.txt").read_bytes() == b"precious"
    assert (root / "images-out-existing-file" / "mine.npz").read_bytes() == b"mine"
    assert (root / "rewards-out-existing" / "r.npz").read_bytes() == b"mine"
    assert (root / "rewards-out-dot-zarr-user" / "keep.zarr" / "mine.txt").read_bytes() == b"x"
    assert sorted(p.name for p in (root / "images-out-dot").iterdir()) == []
    assert not (root / "evil").exists() and not (root.parent / "evil").exists()
