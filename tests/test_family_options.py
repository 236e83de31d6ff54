"""Issue 38: families own their options. `model.options` is checked by the family's own schema;
a family registered from Python declares its options and gets them; any registered tabular
family can be a reference model; the built-ins' options set their older flat keys."""

import numpy as np
import pytest
from pydantic import BaseModel, Field

import candleflow as cf
from candleflow.config import load_config
from candleflow.errors import ConfigError
from candleflow.models import families, files, tabular


class RidgeOptions(BaseModel):
    strength: float = Field(1.0, gt=0, description="the L2 strength (alpha)")


SEEN: list[float] = []


def fit_strong_ridge(model_cfg, seed, x, y, weights, x_val, y_val, lags):
    """Ridge regression whose strength comes from the family's own options."""
    opts = families.family("strong_ridge").options_of(model_cfg)
    SEEN.append(opts.strength)
    return tabular.fit_ridge(x, y, weights, lags, c=1.0 / opts.strength)


STRONG_RIDGE = families.Family(
    "strong_ridge",
    "lagged_rows",
    fit=fit_strong_ridge,
    load=lambda path, lags: tabular.LinearModel.load(path),
    model_file=files.LINEAR_MODEL,
    tasks=("regress",),
    options=RidgeOptions,
    description="ridge regression with its own strength option",
)


@pytest.fixture
def strong_ridge():
    cf.register_family(STRONG_RIDGE)
    SEEN.clear()
    yield STRONG_RIDGE
    families.unregister("strong_ridge")


def test_builtin_options_set_the_flat_keys_and_an_unknown_one_is_one_line():
    cfg = load_config(None, ["model.kind=lightgbm", "model.options={trees: 300, leaves: 31}"])
    assert cfg.model.gbm_trees == 300 and cfg.model.gbm_leaves == 31
    # an old config's flat key keeps working
    assert load_config(None, ["model.kind=lightgbm", "model.gbm_trees=7"]).model.gbm_trees == 7
    with pytest.raises(ConfigError, match=r"model.options.depth: lightgbm takes trees, learning_rate, leaves"):
        load_config(None, ["model.kind=lightgbm", "model.options={depth: 3}"])
    with pytest.raises(ConfigError, match="gbm_trees"):
        load_config(None, ["model.kind=lightgbm", "model.options={trees: 0}"])  # the flat key's bounds hold


def test_a_registered_family_declares_its_options(strong_ridge):
    cfg = load_config(None, ["labels.kind=volatility", "model.kind=strong_ridge", "model.options={strength: 5}"])
    assert strong_ridge.options_of(cfg.model).strength == 5.0
    assert strong_ridge.options_of(load_config(None, ["model.kind=strong_ridge"]).model).strength == 1.0
    bad = load_config(None, ["labels.kind=volatility", "model.kind=strong_ridge", "model.options={alpha: 5}"])
    with pytest.raises(ConfigError, match=r"^model.options.alpha: strong_ridge takes strength$"):
        families.family("strong_ridge").check_task(bad)
    worse = load_config(None, ["labels.kind=volatility", "model.kind=strong_ridge", "model.options={strength: -1}"])
    with pytest.raises(ConfigError, match=r"model.options.strength: Input should be greater than 0 \(got -1\)"):
        families.family("strong_ridge").check_task(worse)
    with pytest.raises(ConfigError, match=r"^model.options.strength: mlp takes dense_units, dropout$"):
        load_config(None, ["model.kind=mlp", "model.options={strength: 5}"])


@pytest.mark.integration
def test_a_registered_family_trains_with_its_options_and_serves_as_a_reference(strong_ridge, tiny_config):
    """Its option reaches its fit; as a reference model it is fitted beside the model and scored
    in the same table."""
    cfg = tiny_config(
        "labels.kind=volatility",
        "model.kind=strong_ridge",
        "model.options={strength: 50}",
        "evaluation.reference_models=[lightgbm]",
        "output.name=own",
    )
    result = cf.run(cfg)
    assert SEEN and set(SEEN) == {50.0}
    assert {"model", "lightgbm"} <= set(result.metrics["val"]["table"])
    cfg = tiny_config(
        "labels.kind=volatility", "model.kind=linear", "evaluation.reference_models=[strong_ridge]", "output.name=ref"
    )
    table = cf.run(cfg).metrics["val"]["table"]
    assert "strong_ridge" in table and np.isfinite(table["strong_ridge"]["r2"])
    cfg = tiny_config(
        "labels.kind=volatility", "model.kind=linear", "evaluation.reference_models=[mlp]", "output.name=bad"
    )
    with pytest.raises(ConfigError, match="evaluation.reference_models: mlp is not a tabular family"):
        cf.run(cfg)
