"""End to end through the CLI, as a user runs it: a tiny run, the registry, and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY

pytestmark = pytest.mark.integration  # every test here drives the CLI in a subprocess


def cli(*args, cwd, check=True):
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "candleflow.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("run")
    proc = cli("run", *sets(TINY + ["output.name=tiny", "training.verbose=2"]), cwd=cwd)  # the epoch line too
    return cwd, proc


def test_run_writes_a_complete_folder_and_prints_metrics(tiny_run):
    cwd, proc = tiny_run
    run = cwd / "runs" / "tiny"
    assert f"run folder: {Path('runs') / 'tiny'}" in proc.stdout
    # output.report=false (TINY): no page, and the line says how to write it (test_report writes it)
    assert not (run / "report.html").exists() and "(no report: candleflow report runs/tiny writes it)" in proc.stdout
    for name in (
        "config.yaml",
        "data.json",
        "model.keras",
        "model_summary.txt",
        "metadata.json",
        "metrics.json",
        "history.csv",
        "run.log",
    ):
        assert (run / name).is_file(), name
    assert "majority" in proc.stdout and "stratified" in proc.stdout and "balanced" in proc.stdout
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["input_shape"] == [24, 8]
    assert set(meta["versions"]) >= {"candleflow", "keras", "backend", "numpy", "python"}
    data = json.loads((run / "data.json").read_text())
    assert data["fingerprint"] == meta["data_fingerprint"] and data["validation"]["rows_in"] == 3000
    history = (run / "history.csv").read_text().splitlines()
    assert "rss_mb" in history[0] and "input_wait" in history[0] and len(history) == 2
    # the internals are in history.csv and the run log, not on the epoch line people read
    epoch_lines = [line for line in proc.stdout.splitlines() if "val_loss:" in line]
    assert epoch_lines and not any("rss_mb" in line or "input_wait" in line for line in epoch_lines)
    assert "input_wait=" in (run / "run.log").read_text()
    assert list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((run / "tensorboard" / "validation").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["val"]["table"]) == {
        "model",
        "model_argmax",
        "majority",
        "always_hold",
        "stratified",
        "ref_lightgbm",
        "ref_linear",
    }
    assert not list((cwd / "runs").glob(".*"))  # no temporary folder left behind


def test_models_list_show_and_safe_load(tiny_run):
    cwd, _ = tiny_run
    out = cli("models", "list", cwd=cwd).stdout
    assert "tiny" in out and "24x8" in out
    out = cli("models", "show", "tiny", cwd=cwd).stdout
    assert "data_fingerprint" in out and "val period" in out
    code = (  # a fresh process, as a user's script loads a run: one process for both checks
        "from candleflow.runs.registry import load_model; import numpy as np\n"
        "m = load_model('tiny'); print(m.predict(np.zeros((2, 24, 8), 'float32'), verbose=0).shape)\n"
        "try:\n    load_model('tiny', input_shape=(120, 8))\nexcept Exception as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    shape, error = proc.stdout.strip().splitlines()
    assert shape == "(2, 3)", proc.stderr
    assert "model expects windows of shape (24, 8), got (120, 8)" in error


@pytest.mark.extended
def test_same_config_same_metrics(tiny_run):
    cwd, _ = tiny_run
    cli("run", *sets(TINY + ["output.name=tiny2"]), cwd=cwd)
    a = json.loads((cwd / "runs" / "tiny" / "metrics.json").read_text())
    b = json.loads((cwd / "runs" / "tiny2" / "metrics.json").read_text())
    assert a == b


def test_prepare_summary(tmp_path):
    out = cli("prepare", "--json", *sets(["source.n_bars=2000"]), cwd=tmp_path).stdout
    summary = json.loads(out)
    assert summary["feature_shape"] == [2000, 8] and summary["window_shape"] == [120, 8]
    assert summary["split"]["train"]["windows"] > summary["split"]["val"]["windows"] > 0
    assert not (tmp_path / "runs").exists()


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in errors[0], errors[0]


@pytest.mark.extended
def test_bad_input_gives_one_clear_line_and_writes_nothing(tmp_path):
    _one_line_error(cli("run", "--set", "labels.tpp=1", cwd=tmp_path, check=False), "'labels.tpp' is not known")
    _one_line_error(cli("run", "--set", "dataset.window=0", cwd=tmp_path, check=False), "'dataset.window' = 0")
    _one_line_error(cli("run", "--config", "nope.yaml", cwd=tmp_path, check=False), "nope.yaml", "does not exist")
    _one_line_error(
        cli("run", "--set", "source.paths=[missing.csv]", cwd=tmp_path, check=False), "missing.csv: file not found"
    )
    (tmp_path / "p.csv").write_text("time,open,high,low,volume\n1704067200000,1,2,0.5,3\n")
    _one_line_error(
        cli("prepare", "--set", "source.paths=[p.csv]", cwd=tmp_path, check=False), "p.csv", "no 'close' column"
    )
    rows = [f"{1704067200000 + i * 3600000},100,{95 if i == 3 else 101},99,100,1" for i in range(300)]
    (tmp_path / "hl.csv").write_text("\n".join(rows) + "\n")
    _one_line_error(
        cli("run", "--set", "source.paths=[hl.csv]", cwd=tmp_path, check=False), "hl.csv line 4", "high=95.0 low=99.0"
    )
    runs = tmp_path / "runs"
    complete = [p for p in runs.iterdir() if not p.name.startswith(".")] if runs.exists() else []
    assert complete == []  # failed runs leave only hidden .NAME.failed folders with their log
    for failed in runs.glob(".*.failed") if runs.exists() else []:
        assert (failed / "run.log").is_file() and not (failed / "model.keras").exists()


def test_help_everywhere(tmp_path):
    for args in (
        ["--help"],
        ["run", "--help"],
        ["prepare", "--help"],
        ["models", "list", "--help"],
        ["models", "show", "--help"],
        ["walkforward", "--help"],
    ):
        proc = cli(*args, cwd=tmp_path)
        assert "Usage" in proc.stdout
        # issue 41: a flag shows as a flag, not as if it took a <bool> value; options keep their type
        assert "<bool>" not in proc.stdout, args
    assert "<str>" in cli("walkforward", "--help", cwd=tmp_path).stdout


def test_every_failing_command_ends_its_log_file_with_the_error(tmp_path):
    """The console shows one line; the command's log file ends with the same line (and keeps the
    command line it ran), for the commands that read data and those that read run folders."""
    logs = tmp_path / "logs"
    cases = {
        "prepare": ["prepare", "--set", "source.kind=files", "--set", "source.paths=[nope.csv]"],
        "inspect": ["inspect", "--set", "source.kind=files", "--set", "source.paths=[nope.csv]"],
        "predict": ["predict", "nope"],
        "report": ["report", "nope"],
        "export": ["export", "nope"],
        "cache": ["cache", "prune", "--kind", "prepared", "--folder", str(tmp_path)],
    }
    for command, args in cases.items():
        env = dict(os.environ, CANDLEFLOW_LOG_DIR=str(logs))
        proc = subprocess.run(
            [sys.executable, "-m", "candleflow.cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 2, (command, proc.stderr)
        (log,) = logs.glob(f"*-{command}-*.log")
        lines = log.read_text().splitlines()
        assert lines[0].endswith(f"candleflow {' '.join(args)}")
        assert lines[-1].endswith(proc.stderr.strip()) and " ERROR error: " in lines[-1], (command, lines[-1])
        log.unlink()


def test_models_list_prints_a_runs_tags_as_text(tiny_run, tmp_path):
    """Issue 42: terminal control bytes and rich markup in a run folder's tags (an ESC[2J clears
    the screen) are printed escaped, as text; a tag list that is not a list is not a traceback."""
    import shutil

    cwd, _ = tiny_run
    for name, tags in (("esc", ["\x1b[2J\x1b[31mred", "[bold]markup[/bold]"]), ("odd", {"a": 1})):
        shutil.copytree(cwd / "runs" / "tiny", tmp_path / "runs" / name)
        meta = json.loads((tmp_path / "runs" / name / "metadata.json").read_text())
        meta["tags"] = tags
        (tmp_path / "runs" / name / "metadata.json").write_text(json.dumps(meta))
    out = cli("models", "list", cwd=tmp_path).stdout
    assert "\x1b" not in out and "\\x1b[2J" in out and "[bold]markup[/bold]" in out


def test_what_a_finished_run_is_not(tiny_run, tmp_path):
    """A complete run is not resumed; a metrics.json edited into another shape is named, not a
    KeyError."""
    import shutil

    cwd, _ = tiny_run
    again = cli("train", "--resume", "tiny", cwd=cwd, check=False)
    assert again.returncode == 2 and "a complete run (it finished); nothing to resume" in again.stderr
    copy = tmp_path / "runs" / "edited"
    shutil.copytree(cwd / "runs" / "tiny", copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    del metrics["val"]["n"]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    shown = cli("models", "show", "edited", cwd=tmp_path, check=False)
    assert shown.returncode == 2 and "metrics.json: period 'val' is not a metrics table (KeyError" in shown.stderr


@pytest.mark.parametrize(
    "key,error",
    [
        # issue 41: the error waited for JAX and Keras to load and the run to start
        ("source.paths=[nothing/*.csv]", "error: nothing/*.csv: no file matches this pattern"),
        # issue 41: a calendar name that no exchange has, likewise
        (
            "validation.calendar=NOPE",
            "error: validation.calendar 'NOPE': unknown exchange calendar; expected '24/7' or one of",
        ),
    ],
)
def test_bad_inputs_are_said_before_keras_loads(tmp_path, key, error):
    if key.startswith("validation.calendar"):
        pytest.importorskip("exchange_calendars")
    sets = ["--set", "source.kind=files"] * key.startswith("source.") + ["--set", key]
    code = (
        "import sys\nfrom candleflow.cli import main\n"
        f"sys.argv = ['candleflow', 'run', *{sets!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    print('exit', exc.code)\n"
        "print('keras loaded' if 'keras' in sys.modules else 'keras not loaded')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert error in proc.stderr
    assert proc.stdout.split() == ["exit", "2", "keras", "not", "loaded"], proc.stdout


def test_a_tree_model_runs_and_predicts_without_loading_keras(tmp_path):
    """Issue 41: a user who wants LightGBM forecasts imported JAX and Keras first. A tabular run,
    its run folder and its predictions never load a network library."""
    code = (
        "import sys\nfrom candleflow.cli import main\n"
        "def cli(*args):\n"
        "    sys.argv = ['candleflow', *args]\n"
        "    try:\n        main()\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
        "cli('run', '--set', 'model.kind=lightgbm', '--set', 'source.n_bars=3000', '--set', 'dataset.window=24', "
        "'--set', 'output.name=gbm', '--set', 'training.refit=true')\n"
        "cli('predict', 'gbm', '--set', 'source.seed=9', '--latest')\n"
        "heavy = [m for m in ('keras', 'jax', 'tensorflow', 'torch') if m in sys.modules]\n"
        "print('loaded:', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("loaded: []"), proc.stdout[-500:]
    assert "Keras not loaded" in (tmp_path / "runs" / "gbm" / "run.log").read_text()
    versions = json.loads((tmp_path / "runs" / "gbm" / "metadata.json").read_text())["versions"]
    assert "lightgbm" in versions and "keras" not in versions
    assert "latest bar" in proc.stdout


def test_a_run_from_python_logs_to_its_run_log_and_says_what_it_does(tmp_path):
    """Issue 41: `cf.run(cfg)` from a script printed nothing and left a 0-byte run.log (logging
    unconfigured: INFO dropped). The run log gets every line, and stderr shows them."""
    code = (
        "import candleflow as cf\n"
        f"r = cf.run(cf.load_config(None, {TINY!r} + ['output.name=api', 'model.kind=linear']))\n"
        "print((r.run_dir / 'run.log').stat().st_size)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) > 500 and "run finished in" in proc.stderr
    assert "run finished in" in (tmp_path / "runs" / "api" / "run.log").read_text()


def test_long_commands_print_progress_lines_off_a_terminal(tmp_path):
    """Issue 41: off a terminal rich's bars draw nothing; the long commands say their progress in
    plain lines there (at a steady interval and at the end)."""
    proc = cli("rewards", "--set", "source.n_bars=800", "--n", "5000", "--out", "r.npz", cwd=tmp_path)
    assert "reward samples: samples 5,000/5,000 done" in proc.stderr


def test_models_list_rows_follow_the_layout_and_target_task():
    """Issue 38: a run's row is chosen by its metadata's layout and target task, never its keys:
    a reward model's R^2 over the best constant, a regression's R^2 and gain over the baseline
    to beat, a classifier's balanced accuracy and edge."""
    from candleflow.cli.models import _run_row

    common = {"path": "runs/r", "created": "2026-12-07T00:00:00", "symbol": "BTCUSDT", "interval": "1h"}
    reward = _run_row(common | {"layout": "reward", "task": "reward", "metrics": {"val": {"r2": 0.25, "edge_r2": 0.1}}})
    assert reward[5:7] == ["R^2 0.250", "+0.100"]
    val = {"r2": 0.4, "gain_r2": 0.02, "best_baseline": "har"}
    regress = _run_row(common | {"layout": "universe", "target_task": "regress", "metrics": {"val": val}})
    assert regress[5:7] == ["R^2 0.400", "+0.020 vs har"]
    val = {"balanced_accuracy": 0.45, "edge_balanced_accuracy": 0.11}
    classes = _run_row(common | {"layout": "series", "target_task": "classify", "metrics": {"val": val}})
    assert classes[5:7] == ["0.450", "+0.110"]
