"""Config: defaults, overrides, and one clear line for each mistake."""

from pathlib import Path

import pytest
import yaml

from candleflow.config import RunConfig, load_config
from candleflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_is_the_embedded_default():
    assert load_config(ROOT / "configs" / "default.yaml") == RunConfig()


def test_overrides_parse_yaml_values():
    cfg = load_config(None, ["labels.horizon=48", "model.lstm_units=[16, 8]", "source.signal_strength=0"])
    assert cfg.labels.horizon == 48 and cfg.model.lstm_units == [16, 8] and cfg.source.signal_strength == 0


def test_files_source_kind_inferred_from_paths():
    cfg = load_config(None, ["source.paths=[a.csv]"])
    assert cfg.source.kind == "files"


def test_unknown_key_names_it_and_what_is_allowed():
    with pytest.raises(ConfigError) as exc:
        load_config(None, ["labels.horizn=3"])
    msg = str(exc.value)
    assert "'labels.horizn' is not known" in msg and "horizon" in msg and "\n" not in msg


def test_bad_value_names_key_value_and_rule():
    with pytest.raises(ConfigError, match=r"'labels.horizon' = -3: Input should be greater than or equal to 1"):
        load_config(None, ["labels.horizon=-3"])
    with pytest.raises(ConfigError, match=r"'labels.same_bar' = 'maybe': Input should be 'stop' or 'target'"):
        load_config(None, ["labels.same_bar=maybe"])
    with pytest.raises(ConfigError, match=r"'features.names' = .*unknown feature 'foo'"):
        load_config(None, ["features.names=[foo]"])


def test_missing_and_broken_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    top = tmp_path / "top.yaml"
    top.write_text(yaml.safe_dump({"trainig": {}}))
    with pytest.raises(ConfigError, match="'trainig' is not known; allowed here: task, source, validation"):
        load_config(top)


@pytest.mark.parametrize("name", ["binance-btcusdt-1h.yaml", "binance-btcusdt-1m.yaml"])
def test_example_configs_validate(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.source.kind == "binance" and cfg.source.symbol == "BTCUSDT"


def test_binance_source_checks_market_and_interval():
    with pytest.raises(ConfigError, match="'1s' is published for spot only"):
        load_config(None, ["source.kind=binance", "source.market=um", "source.interval=1s"])


def test_set_takes_feature_names_as_the_docs_write_them_and_one_path_as_a_list():
    """Issue 41: `--set 'features.names=[macd(12, 26, 9)]'` (the docs' own example) broke in the
    YAML list, and one path was refused where a list is expected."""
    cfg = load_config(None, ["features.names=[macd(12, 26, 9), rsi, 'bb_pos(20)']"])
    assert cfg.features.names == ["macd(12, 26, 9)", "rsi", "bb_pos(20)"]
    files = load_config(None, ["source.kind=files", "source.paths=data/BTC.csv", "backtest.funding_paths=f.csv"])
    assert files.source.paths == ["data/BTC.csv"] and files.backtest.funding_paths == ["f.csv"]
    braces = load_config(None, ["source.kind=files", "source.paths=['data/{symbol}-[0-9]*.csv']"])
    assert braces.source.paths == ["data/{symbol}-[0-9]*.csv"]  # quoted items as before


def test_overrides_from_python_as_a_mapping_or_keywords():
    """Issue 41: overrides from Python were `key=value` strings only."""
    import candleflow as cf

    cfg = cf.load_config(overrides={"training.epochs": 1, "features.names": ["rsi", "macd(12, 26, 9)"]})
    assert cfg.training.epochs == 1 and cfg.features.names == ["rsi", "macd(12, 26, 9)"]
    kw = cf.load_config(training__epochs=2, model__kind="lightgbm", source__kind="files", source__paths="x.csv")
    assert (kw.training.epochs, kw.model.kind, kw.source.paths) == (2, "lightgbm", ["x.csv"])
    with pytest.raises(cf.ConfigError, match="config key 'labels.tpp' is not known"):
        cf.load_config(overrides={"labels.tpp": 1})


def test_the_task_rules_decide_what_a_target_is_scored_by_in_one_place():
    """Issue 38: classify-or-regress was decided at each site (`if regression ... else ...`). The
    config's check, tune's `auto`, a fold's score, walk-forward's --objective and the class
    weights now read one `TaskRules` per task."""
    from candleflow.config.target_names import TASK_RULES, rules_of
    from candleflow.studies.tune import tune_objective
    from candleflow.studies.walkforward import check_objective

    assert rules_of("volatility") is TASK_RULES["regress"] and rules_of("triple_barrier") is TASK_RULES["classify"]
    vol = load_config(None, ["labels.kind=volatility"])
    assert tune_objective(vol) == "r2" and tune_objective(load_config(None, [])) == "balanced_accuracy"
    with pytest.raises(
        ConfigError, match=r"tune.objective sharpe scores decisions; labels.kind volatility tunes on r2, ic$"
    ):
        load_config(None, ["labels.kind=volatility", "tune.objective=sharpe"])
    with pytest.raises(
        ConfigError, match=r"tune.objective r2 scores a regression target; labels.kind competitive tunes"
    ):
        load_config(None, ["tune.objective=r2"])
    with pytest.raises(ConfigError, match=r"--objective 'sharpe': labels.kind volatility is scored by r2, ic$"):
        check_objective(vol, "sharpe")


def test_the_layout_is_decided_once_and_its_rules_follow():
    """Issue 38: RunConfig.layout from task, dataset.layout and universe.active; what each layout
    allows follows from its rules (config/layouts.py), one line where a key needs another layout."""
    universe = ["universe.symbols=[AAA,BBB]"]
    cases = {
        "series": [],
        "universe": universe,
        "panel": [*universe, "dataset.layout=panel", "model.kind=gpt"],
        "reward": ["task=reward", "training.monitor=val_loss"],
    }
    for layout, keys in cases.items():
        cfg = load_config(None, keys)
        assert cfg.layout == layout and cfg.layout_rules.name == layout
    assert load_config(None, cases["universe"]).layout_rules.pooled
    assert load_config(None, cases["panel"]).layout_rules.side_by_side
    assert not load_config(None, cases["reward"]).layout_rules.family
    for layout in ("universe", "panel", "reward"):  # only one series' decisions trade it
        with pytest.raises(ConfigError, match="training.refit retrains a run on one series"):
            load_config(None, [*cases[layout], "training.refit=true"])
    with pytest.raises(ConfigError, match="tune.objective sharpe trades one series' decisions"):
        load_config(None, [*universe, "tune.objective=sharpe"])
