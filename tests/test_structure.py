"""The package's shape: stage subpackages, no import cycles, a Keras-free data side, one public API."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import candleflow as cf

PKG = Path(cf.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every candleflow module -> the candleflow modules it imports (module level or inside functions)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                pytest.fail(f"{mod}: relative import (use absolute candleflow.* imports)")
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for name in targets:
                if name in modules and name != mod:
                    graph[mod].add(name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles():
    graph = import_graph()
    # the package itself re-exports the API: leave it out, nothing inside imports it
    graph = {m: {n for n in deps if n != "candleflow"} for m, deps in graph.items() if m != "candleflow"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert all("candleflow" not in deps for deps in import_graph().values() if deps)


# the packages from the bottom up: each imports only those before it (never one above it)
LAYERS = [
    "errors",
    "_version",
    "fs",
    "config",
    "data",
    "dataset",
    "images",
    "evaluation",
    "models",
    "runs",
    "rewards",
    "scale",
    "studies",
    "pipeline",
    "cli",
]


def test_no_package_imports_one_above_it():
    """Stages point one way: config knows nothing of data, models nothing of runs, and the
    orchestrators (studies, pipeline, cli) sit above every stage they call."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for mod, deps in import_graph().items():
        if mod == "candleflow":
            continue
        top = mod.split(".")[1]
        assert top in rank, f"{mod}: package {top!r} has no place in LAYERS"
        upward += [f"{mod} -> {d}" for d in sorted(deps) if d != "candleflow" and rank[d.split(".")[1]] > rank[top]]
    assert upward == [], "\n".join(upward)


def test_the_cli_only_presents():
    """cli/ parses options, calls the library and prints: small modules, none reaching for arrays,
    files or caches itself (that logic lives in the library, where a notebook can call it)."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PKG / "cli").glob("*.py")}
    assert max(sizes.values()) < 400, sizes
    for path in (PKG / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"numpy", "pyarrow", "shutil", "pandas", "keras"}, (path.name, imported)
        calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        assert not calls & {"unlink", "rmtree", "rename", "replace_schema_metadata", "evict"}, (path.name, calls)


def test_top_level_reads_as_the_pipeline():
    entries = sorted(p.name for p in PKG.iterdir() if not p.name.startswith("__pycache__"))
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == {
        "data",
        "dataset",
        "images",
        "models",
        "evaluation",
        "runs",
        "rewards",
        "scale",
        "fs",
        "studies",
        "config",
        "cli",
    }
    assert len(entries) <= 16, entries


def test_data_side_imports_no_keras():
    """data/ and dataset/ (and `import candleflow`) never import Keras or a deep-learning backend."""
    mods = sorted(_module_name(p) for p in PKG.rglob("*.py") if p.relative_to(PKG).parts[0] in ("data", "dataset"))
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "import candleflow\n"
        "heavy = [k for k in ('keras', 'jax', 'tensorflow', 'torch') if k in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_and_lazy_entry_points():
    for name in cf.__all__:
        assert getattr(cf, name) is not None, name
    assert "Example" in cf.__doc__ and "dataset_from_arrays" in cf.__doc__
    assert cf.run.__module__ == "candleflow.pipeline" and cf.load_model.__module__ == "candleflow.runs.registry"
    with pytest.raises(AttributeError):
        cf.no_such_name  # noqa: B018
    # serving.json tells users to call candleflow.Predictor.from_run (it was not exported)
    assert callable(cf.Predictor.from_run) and callable(cf.register_feature) and callable(cf.register_family)


@pytest.mark.integration
def test_tune_and_walkforward_called_twice_in_one_process(tmp_path):
    """`cf.tune` was once both a lazy name and a top-level module: the second access returned the
    module. Each entry point is called twice here, and stays the function."""
    import importlib

    importlib.import_module("candleflow.studies.tune")  # importing the module must not shadow the name
    cfg = cf.load_config(
        None,
        [
            "source.n_bars=2000",
            "dataset.window=16",
            "training.epochs=1",
            "training.verbose=0",
            "tune.folds=2",
            "model.kind=linear",
            f"output.runs_dir={tmp_path}",
        ],
    )
    for i in range(2):
        assert callable(cf.tune) and cf.tune.__module__ == "candleflow.studies.tune"
        study = cf.tune(cfg, f"t{i}", trials=1, space={"labels.tp": cf.config.SearchParam(low=0.004, high=0.006)})
        assert len(study.trials) == 1
    for i in range(2):
        assert callable(cf.walkforward) and cf.walkforward.__module__ == "candleflow.studies.walkforward"
        wf = cf.walkforward(cfg, folds=2, seeds=1, families=["linear"], name=f"w{i}", resamples=50)
        assert "linear" in wf.summary["table"]


def test_error_hierarchy():
    for err in (cf.ConfigError, cf.DataError, cf.SourceError, cf.ValidationError, cf.StoreError, cf.DownloadError):
        assert issubclass(err, cf.CandleflowError) and issubclass(err, ValueError)
    assert issubclass(cf.RegistryError, cf.CandleflowError) and not issubclass(cf.RegistryError, ValueError)


def test_dataset_from_arrays_windows_split_and_purge():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3)).astype(np.float32)
    y = rng.integers(0, 3, 1000)
    y[-5:] = -1  # the last labels cannot be known
    ds = cf.dataset_from_arrays(x, y, window=20, horizon=5, val_fraction=0.25, test_fraction=0.1, embargo=2)
    # windows end at rows 19 .. 994 (labelled); each is a view of the rows it covers
    assert ds.dataset.shape == (976, 20, 3) and ds.dataset.ends[0] == 19 and ds.dataset.ends[-1] == 994
    np.testing.assert_array_equal(ds.dataset.gather([0])[0], x[:20])
    train, val, test = (ds.part(p) for p in ("train", "val", "test"))
    # a training label looks 5 rows ahead: none reaches the first validation row (plus embargo)
    assert train.ends.max() + 5 + 2 < val.ends.min()
    assert val.ends.max() + 5 + 2 < test.ends.min()
    assert ds.split.purged["train"] == 7 and ds.split.purged["val"] == 7
    assert len(train) + len(val) + len(test) + 14 == 976
    with pytest.raises(cf.DataError, match="expected \\(1000,\\)"):
        cf.dataset_from_arrays(x, y[:10])
    one_hot = np.eye(3, dtype=np.float32)[np.clip(y, 0, 2)]  # the seeds' labels: (N, 3) rows (issue 42)
    with pytest.raises(cf.DataError, match=r"one-hot rows .*pass labels.argmax\(axis=1\)"):
        cf.dataset_from_arrays(x, one_hot)
    with pytest.raises(cf.DataError, match="split part 'nope'"):
        ds.part("nope")


def test_dataset_from_arrays_respects_segments():
    x = np.ones((100, 2), np.float32)
    y = np.zeros(100, np.int64)
    ds = cf.dataset_from_arrays(x, y, window=10, horizon=0, segments=np.array([[0, 50], [50, 100]]))
    # no window crosses row 50: ends 9..49 and 59..99
    assert len(ds.dataset) == 82
    assert not np.any((ds.dataset.ends >= 50) & (ds.dataset.ends < 59))


def test_config_feature_names_are_the_computed_features():
    from candleflow.config import FEATURE_NAMES, FeatureConfig
    from candleflow.dataset.features import FEATURES

    assert tuple(FEATURES) == FEATURE_NAMES  # the config's name table and the implementations agree
    assert FeatureConfig().names == [
        "log_return",
        "range",
        "body",
        "upper_wick",
        "lower_wick",
        "volume_ratio",
        "volatility",
        "momentum",
    ]


def test_cli_option_errors_are_one_line_and_write_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from candleflow.cli import app

    monkeypatch.chdir(tmp_path)
    cases = [
        (["images", "--set", "source.n_bars=1500", "--mode", "nope"], "config key 'images.mode' = 'nope'"),
        (["images", "--set", "source.n_bars=1500", "--part", "foo"], "part 'foo': expected one of all, train, val"),
        (["images", "--set", "source.n_bars=1500", "--limit", "0"], "limit 0: expected at least 1"),
        (
            ["download", "--symbol", "X", "--start", "2024-01", "--end", "2024-02", "--concurrency", "99"],
            "--concurrency 99: Input should be less than or equal to 64",
        ),
        (
            ["download", "--symbol", "X", "--start", "2024-01", "--end", "2024-02", "--interval", "1mo"],
            "--interval '1mo'",
        ),
    ]
    for args, expected in cases:
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, cf.CandleflowError), (args, result.exception)
        message = str(result.exception)
        assert expected in message and "\n" not in message, message
    assert list(tmp_path.iterdir()) == []  # nothing written in the working folder


def test_no_value_becomes_report_markup():
    """Report pages escape by default (runs/page.py): a template is a literal of ours, never a
    formatted string that could carry a run folder's value into markup unescaped."""
    import re

    src = Path(cf.__file__).parent
    bad = re.compile(r"""\b(Markup|h)\(\s*f["']""")
    found = [
        f"{p.relative_to(src)}:{n}"
        for p in src.rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if bad.search(line)
    ]
    assert found == [], found
    assert not any("html.escape" in p.read_text() for p in (src / "runs").glob("*report*.py"))  # one escaper


def test_modules_and_functions_stay_small():
    """Issue 38: no module over 600 lines, no function over 80 (a long one is split where a step
    has a name of its own)."""
    big, long = [], []
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > 600:
            big.append(f"{path.relative_to(PKG)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(
                    f"{path.relative_to(PKG)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
                )
    assert big == [] and long == [], "\n".join(big + long)


def test_private_names_stay_in_their_module():
    """Issue 38: no module imports another's private name (a shared helper is made public)."""
    found = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("candleflow"):
                found += [
                    f"{path.relative_to(PKG)}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and a.name != "__version__"
                ]
    assert found == []


# a layout's or a target's name compared outside the config (their registries); per-layout and
# per-task tables keyed by the name are look-ups, not comparisons, and pass
RUN_LAYOUTS = "series|universe|panel|reward"
TARGETS = "competitive|triple_barrier|fixed_horizon|forward_return|volatility"
NAME_TEST = re.compile(
    rf"""layout["')\]]*\s*(==|!=|in)\s*\(?\s*["']({RUN_LAYOUTS})["']"""
    rf"""|kind["')\]]*\s*(==|!=|in)\s*\(?\s*["']({TARGETS})["']"""
)


def test_no_module_tests_a_layout_or_target_by_name():
    """Issue 38: code asks `RunConfig.layout_rules` (or looks its per-layout function up by the
    name) and the target registry; none compares a layout or a target's name."""
    found = []
    for path in PKG.rglob("*.py"):
        if path.parent.name == "config":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if NAME_TEST.search(line):
                found.append(f"{path.relative_to(PKG)}:{number}: {line.strip()}")
    assert found == []


def test_every_layout_and_task_has_its_entry_in_every_table():
    """Issue 38: the per-layout and per-task look-ups cover every layout and task the config
    knows, so a look-up never meets a name it lacks (a new layout or task is added to each)."""
    from candleflow import pipeline
    from candleflow.cli.present import CLASS_PRINTERS
    from candleflow.config import LAYOUT_RULES, LAYOUTS
    from candleflow.config.target_names import TASK_RULES
    from candleflow.dataset.task_arrays import TASK_ARRAYS
    from candleflow.models.families import TASK_HEADS
    from candleflow.models.scoring import PERMUTATION_SCORES, SCORERS
    from candleflow.runs.record import HEADLINES
    from candleflow.runs.report import CLASS_REPORTS
    from candleflow.scale.across_assets import PANEL_PREDICTIONS, UNIVERSE_PREDICTIONS
    from candleflow.scale.panel import PANEL_FITS
    from candleflow.studies.walkforward import FOLD_ARRAYS, STUDY_SUMMARIES

    assert set(pipeline.LAYOUT_RUNS) == set(CLASS_PRINTERS) == set(LAYOUTS)
    trained = {name for name, rules in LAYOUT_RULES.items() if rules.family}
    assert set(pipeline.LAYOUT_INPUTS) == set(CLASS_REPORTS) == trained == {"series", "universe", "panel"}
    tables = (TASK_ARRAYS, TASK_HEADS, SCORERS, PERMUTATION_SCORES, HEADLINES, pipeline.SERIES_PREDICTIONS)
    tables += (UNIVERSE_PREDICTIONS, PANEL_PREDICTIONS, PANEL_FITS, FOLD_ARRAYS, STUDY_SUMMARIES)
    assert all(set(t) == set(TASK_RULES) == {"classify", "regress"} for t in tables)
