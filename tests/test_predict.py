"""`candleflow predict`: a trained run applied to candles with exactly its training features,
reproducing the run's own validation predictions, and refusing what would change the features."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from candleflow.data.load import load_candles
from candleflow.errors import ConfigError, DataError, RegistryError
from candleflow.evaluation.metrics import decide
from candleflow.runs.predict import Predictor

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    import candleflow as cf
    from conftest import TINY

    runs = tmp_path_factory.mktemp("runs")
    cfg = cf.load_config(None, [*TINY, f"output.runs_dir={runs}", "output.name=lstm"])
    return cf.run(cfg), cfg


def _parity(result, cfg) -> None:
    predictor = Predictor.from_run(result.run_dir)
    candles, _ = load_candles(cfg.source, cfg.validation)
    table = predictor.predict(candles)
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        ends, probs = z["val_ends"], z["val_probs"]
    times = candles.open_time[ends].astype("datetime64[ns]")
    got_times = table.column("open_time").to_numpy()
    rows = np.searchsorted(got_times, times)
    assert np.array_equal(got_times[rows], times)  # every validation window has a row
    got = np.stack([table.column(f"prob_{c}").to_numpy() for c in ("short", "hold", "long")], axis=1)[rows]
    np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-6)
    want = np.array(["SHORT", "HOLD", "LONG"])[decide(probs, cfg.evaluation.decision_margin)]
    assert table.column("decision").to_numpy(zero_copy_only=False)[rows].tolist() == want.tolist()
    assert set(table.column("run").to_pylist()) == {result.run_dir.name}
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        y = z["val_y"]
    labels = np.array(table.column("label").to_pylist(), dtype=object)[rows]
    assert labels.tolist() == np.array(["SHORT", "HOLD", "LONG"])[y].tolist()  # the run's own labels


def test_predict_reproduces_the_lstm_runs_validation_predictions(lstm_run):
    _parity(*lstm_run)


@pytest.mark.parametrize("kind", [pytest.param("gpt", marks=pytest.mark.extended), "mlp", "lightgbm", "linear"])
def test_predict_reproduces_every_familys_validation_predictions(tiny_config, kind):
    import candleflow as cf

    cfg = tiny_config(f"model.kind={kind}", f"output.name={kind}", "evaluation.reference_models=[]")
    _parity(cf.run(cfg), cfg)


@pytest.mark.extended
def test_predict_reproduces_the_cnn_runs_validation_predictions(tiny_config):
    import candleflow as cf

    cfg = tiny_config("model.kind=cnn", "model.cnn_filters=[4,8]", "output.name=cnn", "evaluation.reference_models=[]")
    _parity(cf.run(cfg), cfg)


def test_every_complete_window_gets_a_row_and_latest_is_the_last(lstm_run):
    result, cfg = lstm_run
    p = Predictor.from_run(result.run_dir)
    candles, _ = load_candles(cfg.source, cfg.validation)
    table = p.predict(candles)
    last = table.column("open_time").to_numpy()[-1]
    assert last == candles.open_time[-1].astype("datetime64[ns]")  # the newest bar, which has no label yet
    assert table.num_rows == len(candles) - (cfg.dataset.window - 1) - 48  # 48: the features' warm-up
    window = p.predict(candles, start="2021-04-01", end="2021-04-02")
    assert window.num_rows == 25 and str(window.column("open_time")[0].as_py())[:10] == "2021-04-01"
    # issue 42: --latest scores only the newest window (it scored them all, then kept one)
    newest = p.predict(candles, latest=True)
    assert newest.num_rows == 1 and newest.column("open_time").to_numpy()[0] == last
    np.testing.assert_allclose(
        newest.column("prob_long").to_numpy(), table.column("prob_long").to_numpy()[-1:], rtol=1e-5
    )


def test_bad_input_is_one_clear_error(lstm_run, tmp_path):
    result, cfg = lstm_run
    p = Predictor.from_run(result.run_dir)
    candles, _ = load_candles(cfg.source, cfg.validation)
    with pytest.raises(ConfigError, match=r"^--from 2021-04-02 is later than --to 2021-04-01: the range is reversed$"):
        p.predict(candles, start="2021-04-02", end="2021-04-01")
    # a synthetic-trained run applied to files, as the README shows: the files source replaces the synthetic one
    files = p.source_config(["source.kind=files", f"source.paths=[{tmp_path / 'x.csv'}]"])
    assert files.source.kind == "files" and not hasattr(files.source, "n_bars")
    with pytest.raises(ConfigError, match="--set features.volatility_span: predict uses the run's own config"):
        p.source_config(["features.volatility_span=10"])
    other = tmp_path / "other.yaml"
    other.write_text("labels: {horizon: 5}\nsource: {kind: synthetic, seed: 3}\n")
    with pytest.raises(ConfigError, match="key 'labels.horizon' differs from the run's config"):
        p.source_config(None, other)
    other.write_text("source: {kind: synthetic, seed: 3, n_bars: 2000}\n")
    assert p.source_config(None, other).source.seed == 3  # only the source changed: fine
    four_hours = p.source_config(["source.interval=4h"])
    candles, _ = load_candles(four_hours.source, four_hours.validation)
    with pytest.raises(DataError, match="bars of 4h; run lstm was trained on 1h bars"):
        p.predict(candles)
    rows = ["open_time,open,high,low,close,volume"]
    rows += [f"{1704067200000 + 3_600_000 * i},100,101,99,100.5,5" for i in range(60)]
    (tmp_path / "few.csv").write_text("\n".join(rows) + "\n")
    few = p.source_config(["source={kind: files, paths: [" + str(tmp_path / "few.csv") + "]}"])
    candles, _ = load_candles(few.source, few.validation)
    with pytest.raises(DataError, match="60 bars give no complete 24-bar window"):
        p.predict(candles)
    with pytest.raises(DataError, match="between 2030-01-01 and the end"):
        p.predict(load_candles(cfg.source, cfg.validation)[0], start="2030-01-01")
    broken = tmp_path / "broken"
    shutil.copytree(result.run_dir, broken)
    (broken / "model.keras").unlink()
    with pytest.raises(RegistryError, match="not a complete run folder"):
        Predictor.from_run(broken)


def test_predict_cli_writes_signals_atomically_and_refuses_to_overwrite(lstm_run, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from candleflow.cli import app

    result, _ = lstm_run
    monkeypatch.chdir(tmp_path)
    run = str(result.run_dir)
    ok = CliRunner().invoke(app, ["predict", run, "--out", "sig.parquet", "--from", "2021-04-01"])
    assert ok.exit_code == 0, ok.output
    table = pq.read_table(tmp_path / "sig.parquet")
    assert table.column_names == [
        "open_time",
        "close",
        "prob_short",
        "prob_hold",
        "prob_long",
        "decision",
        "label",
        "run",
        "data_fingerprint",
    ]
    labels = table.column("label").to_pylist()
    assert labels[-1] is None and labels[0] in ("SHORT", "HOLD", "LONG")  # the newest bars have no label yet
    again = CliRunner().invoke(app, ["predict", run, "--out", "sig.parquet"])
    assert isinstance(again.exception, DataError) and "exists" in str(again.exception)
    latest = CliRunner().invoke(app, ["predict", run, "--latest"])
    assert latest.exit_code == 0 and f"latest bar 2021-05-05 23:00:00: {table.column('decision')[-1]}" in latest.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sig.parquet"]


def test_fresh_daily_file_is_downloaded_once_and_scored(binance_dir, tmp_path):
    """download twice fetches nothing the second time; a new daily file on the mirror is fetched
    once, and predict scores its newest bar exactly as a full predict does."""
    import candleflow as cf
    from candleflow.data.sources.binance.fetch import fetch_candles
    from candleflow.data.sources.binance.mirror import MirrorServer

    daily = "data/spot/daily/klines/BTCUSDT/1m"
    mirror = tmp_path / "mirror" / daily
    mirror.mkdir(parents=True)
    for day in range(1, 7):
        for suffix in ("", ".CHECKSUM"):
            name = f"BTCUSDT-1m-2025-03-{day:02d}.zip{suffix}"
            shutil.copy(binance_dir / "daily" / "klines" / "BTCUSDT" / "1m" / name, mirror / name)
    with MirrorServer(tmp_path / "mirror") as srv:
        source = [
            "source.kind=binance",
            "source.interval=1m",
            "source.start=2025-03-01",
            "source.end=2025-03-07",
            f"source.base_url={srv.url}",
            f"source.cache_dir={tmp_path / 'cache'}",
        ]
        from conftest import TINY

        tiny = [kv for kv in TINY if not kv.startswith("source.")]
        cfg = cf.load_config(
            None,
            [
                *tiny,
                *source,
                f"output.runs_dir={tmp_path / 'runs'}",
                "output.name=btc1m",
                "evaluation.reference_models=[]",
            ],
        )
        result = cf.run(cfg)
        parquet = tmp_path / "cache" / "candles" / "spot" / "BTCUSDT" / "BTCUSDT-1m.parquet"
        before = parquet.stat().st_ino  # a rewrite renames a new file into place
        again = fetch_candles(cfg.source)
        assert again.download.count("downloaded") == 0 and again.download.count("cached") == 6
        assert parquet.stat().st_ino == before  # unchanged candles: the Parquet is not rewritten
        for suffix in ("", ".CHECKSUM"):  # the mirror publishes the next day
            name = f"BTCUSDT-1m-2025-03-07.zip{suffix}"
            shutil.copy(binance_dir / "daily" / "klines" / "BTCUSDT" / "1m" / name, mirror / name)
        from typer.testing import CliRunner

        from candleflow.cli import app

        download = [
            "download",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--start",
            "2025-03-01",
            "--end",
            "2025-03-07",
            "--base-url",
            srv.url,
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
        fetched = CliRunner().invoke(app, download)
        assert fetched.exit_code == 0, fetched.output
        fresh = fetch_candles(cfg.source)  # what the CLI left in the cache: nothing more to fetch
        assert fresh.download.count("downloaded") == 0 and fresh.download.count("cached") == 7
        assert parquet.stat().st_ino != before and len(fresh.candles) == 7 * 1440
        p = Predictor.from_run(result.run_dir)
        candles, _ = load_candles(cfg.source, cfg.validation)
        full = p.predict(candles)
        newest = full.column("open_time")[-1].as_py()
        assert str(newest) == "2025-03-07 23:59:00"
        latest = CliRunner().invoke(app, ["predict", str(result.run_dir), "--latest"])
        assert latest.exit_code == 0, latest.output
        assert f"latest bar 2025-03-07 23:59:00: {full.column('decision')[-1]}" in latest.output
        only_last = p.predict(candles, start=str(newest).replace(" ", "T"))
        assert only_last.num_rows == 1
        assert only_last.column("decision")[0] == full.column("decision")[-1]
        assert only_last.column("prob_long")[0].as_py() == pytest.approx(full.column("prob_long")[-1].as_py(), rel=1e-5)


def _table_equal(a, b) -> None:
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    for name in a.column_names:
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name


def test_export_writes_a_serving_bundle_that_predict_reads(lstm_run, tmp_path):
    """`export RUN` gives a folder that predicts from candles on its own: the same table as the
    run, and the exported StableHLO function gives the same probabilities for the same windows."""
    import json

    from typer.testing import CliRunner

    from candleflow.cli import app
    from candleflow.dataset.features import compute_features
    from candleflow.dataset.windows import WindowDataset
    from candleflow.models.export import load_stablehlo

    result, cfg = lstm_run
    bundle = tmp_path / "serving"
    out = CliRunner().invoke(app, ["export", str(result.run_dir), "--out", str(bundle)])
    assert out.exit_code == 0, out.output
    assert "serving bundle" in out.output
    names = sorted(p.name for p in bundle.iterdir())
    assert names == sorted(
        [
            ".candleflow-output",
            "config.yaml",
            "metadata.json",
            "metrics.json",
            "model.keras",
            "model.stablehlo",
            "serving.json",
        ]
    )
    serving = json.loads((bundle / "serving.json").read_text())
    contract = serving["serving_bundle"]
    assert contract["candles"]["interval"] == "1h" and contract["windows"]["bars"] == cfg.dataset.window
    assert contract["features"]["names"] == list(
        compute_features(load_candles(cfg.source, cfg.validation)[0], cfg.features).names
    )
    candles, _ = load_candles(cfg.source, cfg.validation)
    from_run = Predictor.from_run(result.run_dir).predict(candles, start="2021-04-20")
    from_bundle = Predictor.from_run(bundle).predict(candles, start="2021-04-20")
    _table_equal(from_run, from_bundle)  # the run's name travels in the bundle's metadata
    assert set(from_bundle.column("run").to_pylist()) == {result.run_dir.name}
    # the exported function of the window agrees with the bundle's model on the same windows
    feats = compute_features(candles, cfg.features).values
    ends = np.searchsorted(
        candles.open_time, from_bundle.column("open_time").to_numpy().astype("datetime64[ns]").astype(np.int64)
    )
    windows = WindowDataset(feats, np.zeros(len(candles), np.int8), ends, cfg.dataset.window).gather(
        np.arange(len(ends))
    )
    served = load_stablehlo(bundle / "model.stablehlo")(windows)
    got = np.stack([from_bundle.column(f"prob_{c}").to_numpy() for c in ("short", "hold", "long")], axis=1)
    np.testing.assert_allclose(served, got, rtol=1e-4, atol=1e-5)
    cli = CliRunner().invoke(
        app, ["predict", str(bundle), "--out", str(tmp_path / "s.parquet"), "--from", "2021-04-20"]
    )
    assert cli.exit_code == 0, cli.output
    _table_equal(pq.read_table(tmp_path / "s.parquet"), from_run)
    again = CliRunner().invoke(app, ["export", str(result.run_dir), "--out", str(bundle)])
    assert again.exit_code != 0 and "already exists" in str(again.exception)


def test_a_lightgbm_run_exports_its_own_model_file_as_the_bundle(tiny_config, tmp_path):
    import json

    import candleflow as cf
    from candleflow.runs.bundle import export_bundle

    cfg = tiny_config("model.kind=lightgbm", "output.name=gbm", "evaluation.reference_models=[]")
    result = cf.run(cfg)
    target, used = export_bundle(result.run_dir, tmp_path / "gbm-serving")
    assert used == "native" and (target / "model.lightgbm.txt").is_file() and not (target / "model.keras").exists()
    assert (
        json.loads((target / "serving.json").read_text())["serving_bundle"]["windows"]["lags"]
        == json.loads((target / "metadata.json").read_text())["lags"]
    )
    candles, _ = load_candles(cfg.source, cfg.validation)
    _table_equal(Predictor.from_run(result.run_dir).predict(candles), Predictor.from_run(target).predict(candles))


def test_predict_reproduces_a_universe_runs_predictions_series_by_series(tmp_path):
    """A run trained on a store of two synthetic symbols: predict on each symbol's own source gives
    that series' validation probabilities and decisions exactly as the run scored them."""
    import candleflow as cf
    from candleflow.scale.cluster import plan_tasks
    from conftest import TINY

    cfg = cf.load_config(
        None,
        [
            *TINY,
            "universe.symbols=[AAA,BBB]",
            f"universe.store={tmp_path / 'store'}",
            f"output.runs_dir={tmp_path / 'runs'}",
            "output.name=u",
            "cluster.workers=1",
            "evaluation.reference_models=[]",
        ],
    )
    result = cf.run(cfg)
    predictor = Predictor.from_run(result.run_dir)
    with np.load(result.run_dir / "predictions.npz", allow_pickle=False) as z:
        which, ends, times, y, probs = (z[f"val_{k}"] for k in ("series", "ends", "times", "y", "probs"))
    assert result.metadata["series"] == ["AAA-1h", "BBB-1h"] and set(np.unique(which)) == {0, 1}
    for k, task in enumerate(plan_tasks(cfg)):
        candles, _ = load_candles(task.config.source, cfg.validation)
        mine = which == k
        assert np.array_equal(candles.open_time[ends[mine]], times[mine])  # the store's bars are the source's
        table = predictor.predict(candles)
        got_times = table.column("open_time").to_numpy().astype("datetime64[ns]").astype(np.int64)
        rows = np.searchsorted(got_times, times[mine])
        assert np.array_equal(got_times[rows], times[mine])
        got = np.stack([table.column(f"prob_{c}").to_numpy() for c in ("short", "hold", "long")], axis=1)[rows]
        np.testing.assert_allclose(got, probs[mine], rtol=1e-5, atol=1e-6)
        want = np.array(["SHORT", "HOLD", "LONG"])[decide(probs[mine], cfg.evaluation.decision_margin)]
        assert table.column("decision").to_numpy(zero_copy_only=False)[rows].tolist() == want.tolist()
        labels = np.array(table.column("label").to_pylist(), dtype=object)[rows]
        assert labels.tolist() == np.array(["SHORT", "HOLD", "LONG"])[y[mine]].tolist()


def test_predict_says_where_the_range_is_not_covered_and_where_the_gaps_are(lstm_run):
    """A hole in the new candles splits them: the rows resume after the features' warm-up, and the
    notes (in the table's metadata, printed by the CLI) give the gap's times and the late start."""
    import numpy as np

    from candleflow.data.candles import Candles
    from candleflow.runs.predict import table_notes

    result, cfg = lstm_run
    p = Predictor.from_run(result.run_dir)
    c, _ = load_candles(cfg.source, cfg.validation)
    keep = np.r_[0:1000, 1100 : len(c)]  # 100 hourly bars missing after row 999
    cut = Candles(
        c.open_time[keep],
        c.open[keep],
        c.high[keep],
        c.low[keep],
        c.close[keep],
        c.volume[keep],
        np.array([[0, 1000], [1000, keep.size]]),
        c.symbol,
        c.interval,
    )
    table = p.predict(cut)
    notes = table_notes(table)
    gap = [n for n in notes if n.startswith("gap:")]
    assert gap == [
        f"gap: no bars from {cut.time_str(999)} to {cut.time_str(1000)}; windows resume at "
        f"{cut.time_str(1000 + cfg.dataset.window - 1 + 48)}"
    ]
    late = p.predict(cut, start=str(np.datetime64(int(c.open_time[0]), "ns"))[:10])
    assert any(n.startswith("asked from") for n in table_notes(late))


def test_predict_trades_the_new_period_where_its_labels_are_complete(lstm_run):
    """The rows whose forward window has happened are traded as the run's backtest trades them,
    beside buy and hold over the same bars (by hand: the first known close to the horizon after
    the last known window, less a round trip)."""
    from candleflow.runs.predict import table_backtest

    result, cfg = lstm_run
    candles, _ = load_candles(cfg.source, cfg.validation)
    table = Predictor.from_run(result.run_dir).predict(candles, start="2021-04-01", end="2021-04-10")
    bt = table_backtest(table)
    labelled = [v is not None for v in table.column("label").to_pylist()]
    assert bt["windows"] == sum(labelled) and bt["from"].startswith("2021-04-01")
    times = candles.open_time.astype("datetime64[ns]")
    first = int(np.searchsorted(times, table.column("open_time").to_numpy()[0]))
    last = int(np.searchsorted(times, table.column("open_time").to_numpy()[np.flatnonzero(labelled)[-1]]))
    stop = last + cfg.labels.horizon  # the span's last bar
    cost = cfg.backtest.fee + cfg.backtest.slippage
    hold = (1 - cost) * candles.close[stop] / candles.close[first] - cost - 1  # costs at the first and last bar
    assert bt["buy_and_hold"]["total_return"] == pytest.approx(hold, rel=1e-3, abs=1e-3)
    assert 0 <= bt["model"]["trades"] <= bt["windows"]
    newest = Predictor.from_run(result.run_dir).predict(candles, start=str(times[-3])[:19])
    assert table_backtest(newest) is None  # the newest bars' labels are not known yet: nothing to trade


def test_an_edited_run_folder_is_refused_before_its_model_is_used(lstm_run, tmp_path):
    """Issue 42: the digest covers what is loaded and the features' order. A run whose config and
    metadata both list the features reversed still predicted (in the wrong columns); a metadata
    naming a decoy file with the decoy's digest had model.keras loaded unchecked; a reward layout
    without its task reached Keras. Each is one line naming metadata.json."""
    import json
    import shutil

    import yaml

    from candleflow.fs.digest import sha256_file

    result, _ = lstm_run

    def edited(name, change):
        folder = tmp_path / name
        shutil.copytree(result.run_dir, folder)
        meta = json.loads((folder / "metadata.json").read_text())
        change(folder, meta)
        (folder / "metadata.json").write_text(json.dumps(meta))
        return folder

    def reversed_features(folder, meta):
        meta["feature_names"] = meta["feature_names"][::-1]
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        cfg["features"]["names"] = cfg["features"]["names"][::-1]
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg))

    def decoy(folder, meta):
        shutil.copy(folder / "model.keras", folder / "decoy.keras")
        meta["model_file"] = {
            **meta["model_file"],
            "name": "decoy.keras",
            "sha256": sha256_file(folder / "decoy.keras"),
        }

    def no_task(folder, meta):
        meta["layout"] = "reward"

    for name, change, said in (
        ("reversed", reversed_features, "are not the features, in the order, its model was trained on"),
        ("decoy", decoy, "its model file is 'decoy.keras'; a lstm run's is 'model.keras'"),
        ("reward", no_task, "'layout' is 'reward' and 'task' 'classify'"),
    ):
        with pytest.raises(RegistryError, match=re.escape(said)):
            Predictor.from_run(edited(name, change))
