"""The HTML report: its numbers are metrics.json's, it rebuilds identically, and a real browser
shows its plots and tables."""

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import markupsafe
import pytest

from candleflow.config import load_config
from candleflow.pipeline import run
from candleflow.runs.report import BACKTEST_KEYS, build_report, fmt
from conftest import REPORT, TINY

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    a = run(load_config(None, TINY + [f"output.runs_dir={d}", "output.name=a", REPORT]))
    # b is compared with a, never reported: a linear model (no network to compile), no page
    b = run(
        load_config(None, TINY + [f"output.runs_dir={d}", "output.name=b", "labels.horizon=12", "model.kind=linear"])
    )
    return d, a, b


def cells(page: str, table_class: str) -> list[list[str]]:
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', page, re.S).group(1)
    return [
        [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", tr)] for tr in re.findall(r"<tr>(.*?)</tr>", table)
    ][1:]


def check_report_matches_metrics(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    embedded = re.search(r'<script type="application/json" id="candleflow-metrics">(.*?)</script>', page, re.S).group(1)
    assert json.loads(embedded.replace("<\\/", "</")) == metrics
    m = metrics["val"]
    rows = cells(page, "metrics")
    assert [r[0] for r in rows] == list(m["table"])
    for r in rows:
        t = m["table"][r[0]]
        assert r[1:4] == [fmt(t["accuracy"]), fmt(t["balanced_accuracy"]), fmt(t["macro_f1"])]
    tr = m["trading"]
    source = {**tr["table"], **tr["legs"], **{f"model at {k} costs": v for k, v in tr["costs"].items() if k != "1x"}}
    percent = {
        "total_return",
        "annual_return",
        "annual_volatility",
        "max_drawdown",
        "hit_rate",
        "average_trade",
        "average_win",
        "average_loss",
        "cost_share",
        "exposure",
    }

    def shown(k: str, v: object) -> str:  # every fraction in percent, ratios to 2 decimals, counts as they are
        if v is None:
            return "-"
        if k in ("max_drawdown", "exposure", "hit_rate", "cost_share", "annual_volatility"):
            return f"{v * 100:.2f}%"  # sizes and shares: no sign (issue 41: a drawdown printed with +)
        if k in percent:
            return f"{v * 100:+.2f}%"
        return f"{v:.2f}" if k in ("sharpe", "sortino", "turnover") and isinstance(v, float) else fmt(v)

    rows = cells(page, "backtest")
    assert [r[0] for r in rows] == list(source)
    for r in rows:
        want = source[r[0]]
        assert r[1:] == [shown(k, want.get(k)) for k in BACKTEST_KEYS]
    assert f"{m['edge_balanced_accuracy'] * 100:+.2f} points" in page


@pytest.mark.integration
def test_report_numbers_are_metrics_json(runs):
    _, a, _ = runs
    check_report_matches_metrics(a.run_dir)
    trading = a.metrics["val"]["trading"]
    assert set(trading["table"]) == {"model", "buy_and_hold", "random_signals", "labels"}
    assert trading["signals"]["random_signals"] == trading["signals"]["model"]  # the model's trade rate
    assert trading["table"]["labels"]["hit_rate"] > 0.9  # the labels know the future: the upper bound
    assert 0 <= trading["reliability"]["ece"] <= 1 and 1 <= len(trading["coverage"]) <= 7
    thresholds = [c["threshold"] for c in trading["coverage"]]
    assert thresholds == sorted(thresholds) and thresholds[0] <= 0.5  # the model's own quantiles, lowest first
    assert set(trading["legs"]) == {"model_long_only", "model_short_only"} and set(trading["costs"]) == {
        "0x",
        "1x",
        "2x",
    }
    assert trading["costs"]["1x"] == trading["table"]["model"]  # the configured costs are the model's backtest
    assert trading["costs"]["0x"]["total_return"] >= trading["costs"]["2x"]["total_return"]
    assert trading["trades"] and trading["trades"][0]["side"] in ("LONG", "SHORT")
    # issue 41: the embedded market's backtest is labelled as the planted signal's, beside it
    assert "a synthetic market with a planted signal" in trading["note"]
    assert "a synthetic market with a planted signal" in (a.run_dir / "report.html").read_text()


@pytest.mark.integration
def test_report_rebuilds_identically_from_the_run_folder(runs):
    _, a, _ = runs
    before = (a.run_dir / "report.html").read_bytes()
    build_report(a.run_dir)
    assert (a.run_dir / "report.html").read_bytes() == before


@pytest.mark.integration
def test_report_needs_no_source_and_old_folders_rebuild_from_it(tmp_path):
    """The curves and example windows are stored at run time: with the run's candle file deleted,
    `report` writes the same page. A folder from before report_data.npz rebuilds it from the
    source, identically, and says so in one line when the source is gone."""
    from candleflow.errors import SourceError
    from conftest import BINANCE

    data = tmp_path / "data"
    data.mkdir()
    for m in ("01", "02", "03"):
        shutil.copy(BINANCE / f"monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-{m}.zip", data)
    cfg = load_config(
        None,
        [
            *TINY,
            "source.kind=files",
            f"source.paths=[{data}/*.zip]",
            f"output.runs_dir={tmp_path / 'runs'}",
            "output.name=files",
            REPORT,
        ],
    )
    folder = run(cfg).run_dir
    page = (folder / "report.html").read_bytes()
    (folder / "report_data.npz").rename(tmp_path / "report_data.npz")  # as written before the file existed
    build_report(folder)  # rebuilt from the source: the same page
    assert (folder / "report.html").read_bytes() == page
    shutil.rmtree(data)
    with pytest.raises(SourceError, match=r"data/\*.zip: no file matches this pattern"):
        build_report(folder)  # old folder, source gone: a one-line error
    (tmp_path / "report_data.npz").rename(folder / "report_data.npz")
    (folder / "report.html").unlink()
    build_report(folder)  # source gone, data stored: the same page
    assert (folder / "report.html").read_bytes() == page


@pytest.mark.integration
def test_report_and_compare_cli(runs):
    d, a, b = runs
    env = dict(os.environ, COLUMNS="200")
    out = subprocess.run(
        [sys.executable, "-m", "candleflow.cli", "report", "a", "--runs-dir", str(d)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0 and "report.html" in out.stdout, out.stderr
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "candleflow.cli",
            "compare",
            "a",
            "b",
            "--runs-dir",
            str(d),
            "--html",
            str(d / "compare.html"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "config labels.horizon" in out.stdout and "balanced_accuracy" in out.stdout
    assert "labels.horizon" in (d / "compare.html").read_text()


def open_in_browser(page: Path, images: int, tables: int, shot_name: str) -> None:
    """Open a report in headless Chromium: every plot decodes and the tables are there (read from
    the DOM after its scripts ran), and a full-page screenshot is written to test-artifacts/."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CANDLEFLOW_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    url = page.as_uri()
    dom = subprocess.run(
        [
            chromium,
            *flags,
            f"--user-data-dir={page.parent / '.chrome1'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="(\d+)"', body))
    assert int(attrs["images"]) >= images and attrs["images-loaded"] == attrs["images"]  # every plot decoded
    assert int(attrs["tables"]) >= tables
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / shot_name
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            chromium,
            *flags,
            f"--user-data-dir={page.parent / '.chrome2'}",
            "--window-size=1280,3000",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 50_000


@pytest.mark.integration
def test_report_opens_in_a_real_browser(runs):
    _, a, _ = runs
    open_in_browser(a.run_dir / "report.html", images=6, tables=6, shot_name="report.png")


MARKUP = "<script>document.title='PWNED'</script><img src=x onerror=\"document.body.dataset.pwned=1\">"


def _poison(value):
    """Every string in a JSON tree replaced with live markup (keys kept: the report looks them up)."""
    if isinstance(value, dict):
        return {k: _poison(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_poison(v) for v in value]
    return MARKUP if isinstance(value, str) else value


@pytest.mark.integration
def test_no_run_folder_value_reaches_the_report_unescaped(runs, tmp_path):
    """Issue 42: a run folder is hostile input. Every string of metadata.json, metrics.json and
    data.json, the backtest's mode, fee, slippage and span and the metadata's epochs_run and
    fit_seconds (numbers turned into markup), the model summary and the tags: all filled with a
    <script> and an <img onerror>; the page shows them as text (none is an element, in the file and
    in a real browser's DOM after its scripts ran)."""
    _, a, _ = runs
    folder = tmp_path / "poisoned"
    shutil.copytree(a.run_dir, folder)
    meta = _poison(json.loads((folder / "metadata.json").read_text()))
    meta.update(run=MARKUP, epochs_run=MARKUP, fit_seconds=MARKUP, parameters=3, tags=[MARKUP], notes=MARKUP)
    (folder / "metadata.json").write_text(json.dumps(meta))
    from candleflow.errors import RegistryError

    with pytest.raises(RegistryError, match=r"poisoned: layout .{1,44}; its numbers are in metrics.json"):
        build_report(folder)  # the layout chooses the report: a value that is none is refused, never guessed
    meta["layout"] = "series"
    (folder / "metadata.json").write_text(json.dumps(meta))
    metrics = _poison(json.loads((folder / "metrics.json").read_text()))
    for m in metrics.values():
        m["trading"].update(mode=MARKUP, fee=MARKUP, slippage=MARKUP, span=[MARKUP, MARKUP])
        m["decision_margin"] = json.loads((a.run_dir / "metrics.json").read_text())["val"]["decision_margin"]
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "data.json").write_text(json.dumps(_poison(json.loads((folder / "data.json").read_text()))))
    (folder / "summary.txt").write_text(MARKUP)
    build_report(folder)
    page = (folder / "report.html").read_text()
    assert page.count("<script") == 2  # the page's own: the embedded JSON and the image counter
    assert "<img src=x" not in page and 'onerror="document' not in page
    assert page.count(str(markupsafe.escape(MARKUP))) > 20  # shown as text
    embedded = re.search(r'<script type="application/json" id="candleflow-metrics">(.*?)</script>', page, re.S)
    assert json.loads(embedded.group(1)) == metrics  # the JSON survives, with no "</script>" inside
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CANDLEFLOW_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / '.chrome'}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            (folder / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'data-tables="' in dom  # the page's own script ran ...
    assert "data-pwned" not in dom and "<title>PWNED" not in dom and '<img src="x"' not in dom  # ... and no other


@pytest.mark.integration
def test_a_tampered_run_folder_is_one_line_not_a_traceback(runs, tmp_path):
    _, a, _ = runs
    folder = tmp_path / "tampered"
    shutil.copytree(a.run_dir, folder)
    meta = json.loads((folder / "metadata.json").read_text())
    # non-string tags and a count written as a string are shown as text, not a traceback (issue 42)
    meta["tags"] = [1, {"a": 2}]
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["val"]["n"] = "many"
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "metadata.json").write_text(json.dumps(meta))
    page = build_report(folder).read_text()
    assert "<code>1</code>" in page and "val period: many windows" in page
    meta["input_shape"] = 5  # a list in every run folder
    (folder / "metadata.json").write_text(json.dumps(meta))
    from candleflow.errors import RegistryError

    with pytest.raises(RegistryError, match=r"tampered: cannot build a report: .*metadata.json or metrics.json"):
        build_report(folder)
