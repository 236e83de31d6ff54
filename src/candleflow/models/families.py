"""The model-family registry: the one place that knows what each `model.kind` is.

A family declares what it reads (feature windows, chart images rendered from the windows, or the
windows' lagged rows), the layouts and tasks it accepts, its learning rate under
`training.learning_rate: auto`, and how it builds or fits, predicts probabilities, saves and
loads. Every module that used to branch on the kind asks `family(cfg.model.kind)` instead, so a
new family is one module and one `register(Family(...))` call::

    from candleflow.models.families import Family, register

    register(Family("centroid", inputs="lagged_rows", fit=fit_centroid, load=load_centroid,
                    model_file="model.centroid.npz"))

Tabular families (`inputs="lagged_rows"`) fit a model object that has `predict_proba(x)`,
`save(folder)`, `summary()`, `count_params()` and `lags`; Keras families give a `build`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from candleflow.config import BUILTIN_OPTIONS, RunConfig
from candleflow.dataset.windows import Windows, ends_of
from candleflow.errors import ConfigError, RegistryError
from candleflow.models import files

Inputs = Literal["windows", "images", "lagged_rows"]
PREDICT_BATCH = 1024

# fit(model config, seed, x, y, sample weights, x_val, y_val, lags) -> fitted tabular model
TabularFit = Callable[[Any, int, np.ndarray, np.ndarray, "np.ndarray | None", np.ndarray, np.ndarray, list[int]], Any]


@dataclass(frozen=True)
class Family:
    """One model family and everything the pipeline, `predict`, `export` and the registry need
    to know about it."""

    name: str
    inputs: Inputs
    # Keras families: build(model cfg, window, features, mean, var, lr, compile=True) over windows,
    # build(model cfg, image shape, lr, compile=True) over images -> the model, compiled unless asked
    build: Callable[..., Any] | None = None
    fit: TabularFit | None = None  # tabular families
    load: Callable[[Path, list[int]], Any] | None = None  # tabular families: (run folder, lags) -> model
    model_file: str = files.KERAS_MODEL
    layouts: tuple[str, ...] = ("series", "universe")
    tasks: tuple[str, ...] = ("classify",)
    learning_rate: float = 1e-3  # training.learning_rate: auto
    description: str = ""
    # a registered family's hyperparameters: a pydantic model whose fields are the keys
    # `model.options` may set (the built-ins' options are config.BUILTIN_OPTIONS)
    options: type[BaseModel] | None = None
    # the MLflow flavour a trained model is logged with: (loaded model) -> (flavour, the object
    # that flavour logs); None: a Keras network over windows is logged as "keras", anything else
    # is not logged as a model (its files still are)
    mlflow: Callable[[Any], tuple[str, Any]] | None = None

    def options_of(self, model_cfg: Any) -> Any:
        """The family's options from `model.options`, checked by its schema (its defaults where
        unset); a one-line error naming an unknown or invalid option. None without a schema."""
        given = dict(getattr(model_cfg, "options", {}) or {})
        if self.options is None:
            if given and self.name not in BUILTIN_OPTIONS:
                raise ConfigError(f"model.options.{sorted(given)[0]}: {self.name} declares no options")
            return None
        unknown = sorted(set(given) - set(self.options.model_fields))
        if unknown:
            raise ConfigError(f"model.options.{unknown[0]}: {self.name} takes {', '.join(self.options.model_fields)}")
        try:
            return self.options(**given)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(
                f"model.options.{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            ) from None

    def mlflow_model(self, model: Any) -> tuple[str, Any] | None:
        """The MLflow flavour ("keras", "lightgbm") and the object it logs for a model of this
        family, or None where no flavour keeps it without pickle."""
        if self.mlflow is not None:
            return self.mlflow(model)
        return ("keras", model) if self.inputs == "windows" else None

    @property
    def tabular(self) -> bool:
        """Fitted on lagged rows (no Keras training loop, its own model file)."""
        return self.inputs == "lagged_rows"

    @property
    def normalisation(self) -> str:
        """How inputs are scaled, as the serving contract states it."""
        if self.tabular:
            return "none (trees and standardised coefficients read raw lagged features)"
        return "inside the model (fitted on the run's training rows)"

    def check_task(self, cfg: RunConfig) -> None:
        """A one-line error where the family cannot learn the configured target (or its
        `model.options` do not fit its schema)."""
        self.options_of(cfg.model)
        task = cfg.labels.rules.name
        if task not in self.tasks:
            able = [f.name for f in _FAMILIES.values() if task in f.tasks]
            raise ConfigError(
                f"model.kind {self.name!r} does not learn labels.kind {cfg.labels.kind} ({task}); families that do: "
                f"{', '.join(able) or 'none'}"
            )

    def fits(self, layout: str) -> bool:
        """Whether the family trains on `layout` (series, universe, panel)."""
        return layout in self.layouts

    def check_layout(self, layout: str) -> None:
        """A one-line error where the family cannot train on `layout` (series, universe, panel)."""
        if not self.fits(layout):
            able = [f.name for f in _FAMILIES.values() if f.fits(layout)]
            raise ConfigError(
                f"model.kind {self.name!r} does not train on a {layout} (it takes {', '.join(self.layouts)}); "
                f"families that do: {', '.join(able) or 'none'}"
            )

    def network(
        self,
        cfg: RunConfig,
        train_ds: Windows,
        prep: Any = None,
        state: dict[str, Any] | None = None,
        compile: bool = True,
    ) -> tuple[Any, Callable[..., Any], tuple[int, ...]]:
        """A Keras family's compiled model (or the one saved with a resume state), a loader
        factory over datasets of the same windows, and the model's input shape. Image families
        render charts from `prep`'s candles."""
        from candleflow.models.loading import model_from

        def built(make: Callable[[], Any]) -> Any:
            return model_from(state, make)

        lr = learning_rate(cfg)
        build = self.build
        head = TASK_HEADS[cfg.labels.task](cfg, train_ds)
        if build is None:
            raise ConfigError(f"model.kind {self.name!r} is fitted on lagged rows, not trained as a network")
        if self.inputs == "windows":
            from candleflow.models.loaders import keras_loader

            mean, var = train_ds.moments()
            window, n_feat = train_ds.shape[1:]
            model = built(
                lambda: build(cfg.model, window, n_feat, mean, np.maximum(var, 1e-12), lr, compile=compile, **head)
            )
            return model, keras_loader, tuple(train_ds.shape[1:])
        if self.inputs == "images":
            if prep is None:
                raise ConfigError(
                    f"model.kind {self.name!r} renders charts from one series' candles: train it on one source"
                )
            loader = image_loader_for(prep.candles, cfg)
            shape = _image_shape(prep.candles, train_ds, cfg)
            model = built(lambda: build(cfg.model, shape, lr, compile=compile, **head))
            return model, loader, (*shape, 1)
        raise ConfigError(f"model.kind {self.name!r} reads {self.inputs}; networks read windows or images")

    def model_inputs(self, model: Any, ds: Windows) -> np.ndarray:
        """What the model itself is given for the windows of `ds` (what an MLflow model logged
        from a run takes): a tabular family's lagged rows, a network's windows (n, window,
        features). A family over images has none here: it renders them in its loader."""
        if self.tabular:
            from candleflow.models.tabular import lag_features

            return np.asarray(lag_features(ds, model.lags), np.float32)
        if self.inputs != "windows":
            raise ConfigError(f"model.kind {self.name!r} reads {self.inputs}: its inputs are drawn by its loader")
        return np.asarray(ds.gather(np.arange(len(ds))), np.float32)

    def probabilities(self, model: Any, ds: Windows, cfg: RunConfig, candles: Any = None) -> np.ndarray:
        """Class probabilities (n, 3) for the windows of `ds`, as the run scored them, or for a
        regression target the forecast (n, 1) in the target's units."""
        if self.tabular:
            return np.asarray(model.predict_proba(self.model_inputs(model, ds)))
        if self.inputs == "images":
            loader = image_loader_for(candles, cfg)(ds, PREDICT_BATCH)
        else:
            from candleflow.models.loaders import keras_loader

            loader = keras_loader(ds, PREDICT_BATCH)
        return np.asarray(model.predict(loader, verbose=0))[: len(ds)]

    def save(self, model: Any, run_dir: str | Path) -> None:
        """The model and its one-page summary into a run folder, atomically."""
        from candleflow.fs.atomic import write_text

        if self.tabular:
            write_text(Path(run_dir) / files.SUMMARY, model.summary() + "\n")
            model.save(Path(run_dir))
        else:
            save_network(model, run_dir)

    def load_from(self, run_dir: str | Path, lags: list[int] | None = None) -> Any:
        """The model saved in a run folder (Keras files in safe mode; tabular files in their own
        format, never pickle)."""
        run_dir = Path(run_dir)
        if not (run_dir / self.model_file).is_file():
            raise RegistryError(f"{run_dir}: no {self.name} model file ({self.model_file}) in the run folder")
        if self.tabular:
            assert self.load is not None
            return self.load(run_dir / self.model_file, list(lags or []))
        from candleflow.models.loading import load_model_file

        return load_model_file(run_dir / self.model_file)


def save_network(model: Any, run_dir: str | Path) -> None:
    """A Keras model as `model.keras` (and its summary) in a run folder, atomically; the training
    checkpoint it supersedes is removed."""
    from candleflow.fs.atomic import atomic_path, write_text

    run_dir = Path(run_dir)
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **kw: lines.append(line))
    write_text(run_dir / files.SUMMARY, "\n".join(lines) + "\n")
    with atomic_path(run_dir / files.KERAS_MODEL, suffix=".keras") as tmp:
        model.save(tmp)
    (run_dir / files.CHECKPOINT).unlink(missing_ok=True)  # model.keras holds the best weights


def image_loader_for(candles: Any, cfg: RunConfig) -> Callable[..., Any]:
    """A loader factory like `keras_loader` that renders each window's chart from `candles`."""
    from candleflow.images.render import ImageWindows
    from candleflow.models.loaders import image_loader

    def loader(
        ds: Windows,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        labels: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        balanced: bool = False,
        multiple_of: int = 1,
        **kwargs: Any,
    ) -> Any:
        y = ds.labels_at() if labels is None else labels
        images = ImageWindows(candles, ends_of(ds), cfg.images)
        return image_loader(images, y, batch_size, shuffle, seed, weights, balanced, multiple_of, **kwargs)

    return loader


def _image_shape(candles: Any, train_ds: Windows, cfg: RunConfig) -> tuple[int, ...]:
    from candleflow.images.render import ImageWindows

    return tuple(ImageWindows(candles, ends_of(train_ds)[:1], cfg.images).shape)


_FAMILIES: dict[str, Family] = {}


def register(fam: Family, replace: bool = False) -> Family:
    """Add a family under its name (a second one under a taken name only with `replace`)."""
    if not fam.name or not fam.name.replace("_", "").isalnum() or fam.name != fam.name.lower():
        raise ConfigError(f"family name {fam.name!r}: expected lower-case letters, digits and _")
    if fam.name in _FAMILIES and not replace:
        raise ConfigError(f"model family {fam.name!r} is registered already (pass replace=True to replace it)")
    if fam.tabular and (fam.fit is None or fam.load is None):
        raise ConfigError(f"model family {fam.name!r} reads lagged rows: it needs fit and load")
    if not fam.tabular and fam.build is None:
        raise ConfigError(f"model family {fam.name!r} is a network: it needs build")
    _FAMILIES[fam.name] = fam
    return fam


def unregister(name: str) -> None:
    """Remove a family (tests that register their own)."""
    _FAMILIES.pop(name, None)


def family(name: str) -> Family:
    """The registered family `name`, or a one-line error listing those that exist."""
    _builtin()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError(f"model.kind {name!r}: expected one of {', '.join(sorted(_FAMILIES))}") from None


def names(tabular: bool | None = None) -> list[str]:
    """The registered family names (only the tabular ones, or only the networks, when asked)."""
    _builtin()
    return [n for n, f in _FAMILIES.items() if tabular is None or f.tabular == tabular]


def build_model(cfg: RunConfig, train_ds: Windows, prep: Any = None, compile: bool = True) -> Any:
    """The configured network (model.kind), sized for `train_ds`'s windows (its normalisation
    fitted on the rows they read); compiled for training, or as built with `compile=False`."""
    return family(cfg.model.kind).network(cfg, train_ds, prep, compile=compile)[0]


def _softmax_head(cfg: RunConfig, train_ds: Windows) -> dict[str, Any]:
    return {}  # the builders' own: three classes


def _regression_head(cfg: RunConfig, train_ds: Windows) -> dict[str, Any]:
    from candleflow.dataset.targets import training_loss
    from candleflow.models.networks import RegressionHead

    return {"regression": RegressionHead.of(train_ds.labels_at(), training_loss(cfg.labels))}


# a network's output head by target task: softmax over the classes, or one real output scaled to
# the training targets with the target's loss
TASK_HEADS: dict[str, Callable[[RunConfig, Windows], dict[str, Any]]] = {
    "classify": _softmax_head,
    "regress": _regression_head,
}


def learning_rate(cfg: RunConfig) -> float:
    """training.learning_rate with `auto` resolved: the family's own rate for classifiers, 1e-3
    for the reward model."""
    lr = cfg.training.learning_rate
    if lr != "auto":
        return float(lr)
    return family(cfg.model.kind).learning_rate if cfg.task == "classify" else 1e-3


def _network(name: str) -> Callable[..., Any]:
    """networks.<name>, imported when a network is built: registering the families (which every
    `models list`, `models show` and tabular run does) must not import Keras and its backend."""

    def build(*args: Any, **kwargs: Any) -> Any:
        from candleflow.models import networks

        return getattr(networks, name)(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    return build


def _builtin() -> None:
    """Register candleflow's own families once (lazily: importing this module stays light)."""
    if "lstm" in _FAMILIES:
        return
    from candleflow.models import tabular

    BOTH = ("classify", "regress")
    build_lstm, build_gpt, build_mlp, build_cnn = (
        _network(n) for n in ("build_lstm", "build_gpt", "build_mlp", "build_cnn")
    )

    for fam in (
        # the LSTM's rate from the walk-forward study (docs/benchmarks.md)
        Family(
            "lstm",
            "windows",
            build=build_lstm,
            learning_rate=3e-3,
            tasks=BOTH,
            description="stacked LSTM over windows",
        ),
        Family(
            "gpt",
            "windows",
            build=build_gpt,
            layouts=("series", "universe", "panel"),
            tasks=BOTH,
            description="causal transformer over windows (and over panels of tickers)",
        ),
        Family("mlp", "windows", build=build_mlp, tasks=BOTH, description="dense layers over the flattened window"),
        Family("cnn", "images", build=build_cnn, layouts=("series",), tasks=BOTH, description="CNN over chart images"),
        Family(
            "lightgbm",
            "lagged_rows",
            fit=tabular.fit_lightgbm,
            load=tabular.GBMModel.load,
            mlflow=lambda model: ("lightgbm", model.booster),  # the booster's own text file in MLflow too
            model_file=files.GBM_MODEL,
            tasks=BOTH,
            description="LightGBM over the windows' lagged rows",
        ),
        Family(
            "linear",
            "lagged_rows",
            fit=tabular.fit_logistic,
            load=lambda path, lags: tabular.LinearModel.load(path),
            model_file=files.LINEAR_MODEL,
            tasks=BOTH,
            description="multinomial logistic regression (ridge regression for real-valued targets) over the "
            "windows' lagged rows",
        ),
    ):
        _FAMILIES.setdefault(fam.name, fam)


register_family = register  # the package's name for it (candleflow.register_family)

__all__ = ["Family", "build_model", "family", "learning_rate", "names", "register", "register_family", "unregister"]
