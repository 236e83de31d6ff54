"""Issue 41: a light core and extras that say what they bring. Each optional package is blocked
in a child process (`sys.modules[name] = None`, what Python does for a package that is absent),
and the feature that needs it says, in one line, which extra installs it; the core goes on without."""

import subprocess
import sys

import pytest

from candleflow.errors import EXTRAS, MissingExtraError, require


def _child(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_require_names_the_feature_the_package_and_the_extra(monkeypatch):
    require("numpy", "anything")  # installed: nothing said
    monkeypatch.setitem(sys.modules, "optuna", None)  # what Python does for a package that is absent
    with pytest.raises(MissingExtraError, match=r"^candleflow tune needs optuna, which is not installed: "):
        require("optuna", "candleflow tune")
    try:
        require("optuna", "candleflow tune")
    except ImportError as exc:  # an ImportError too, for code that catches those
        assert "pip install 'candleflow[tune]'" in str(exc)
    # every extra named here is one pyproject declares
    import tomllib
    from pathlib import Path

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert set(EXTRAS.values()) <= set(declared["optional-dependencies"])


def test_a_small_universe_prepares_in_this_process_and_without_dask(tmp_path):
    """Five daily files started a two-process Dask cluster that re-imported everything. A few
    entries (cluster.in_process_up_to) prepare here; without Dask every prepare does, and only a
    scheduler asked for by name needs the scale extra."""
    code = (
        "import sys\nsys.modules['distributed'] = None\n"
        "from candleflow.config import load_config\nfrom candleflow.scale.cluster import build_store\n"
        "from candleflow.errors import MissingExtraError\n"
        "keys = ['universe.symbols=[AAA,BBB,CCC]', 'source.n_bars=600', 'universe.store=store']\n"
        "r = build_store(load_config(None, keys))\n"
        "print('first', r.workers, sorted(x['name'] for x in r.computed))\n"
        "r = build_store(load_config(None, keys + ['universe.symbols=[AAA,BBB,CCC,DDD]', 'cluster.in_process_up_to=0']))\n"
        "print('more', r.workers, [x['name'] for x in r.computed], r.skipped)\n"
        "try:\n"
        "    build_store(load_config(None, keys + ['universe.symbols=[EEE]', 'cluster.scheduler=tcp://127.0.0.1:1']))\n"
        "except MissingExtraError as exc:\n    print('error', exc)\n"
    )
    proc = _child(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "first 1 ['AAA-1h', 'BBB-1h', 'CCC-1h']"
    assert (
        lines[1] == "more 1 ['DDD-1h'] ['AAA-1h', 'BBB-1h', 'CCC-1h']"
    )  # the rest already prepared: only DDD computed
    assert lines[2].startswith("error a Dask cluster (cluster.scheduler") and "candleflow[scale]" in lines[2]


def test_tune_without_optuna_and_zarr_images_without_zarr_say_the_extra(tmp_path):
    code = (
        "import sys\nsys.modules['optuna'] = None\nsys.modules['zarr'] = None\n"
        "import numpy as np\nfrom candleflow.config import load_config\nfrom candleflow.errors import MissingExtraError\n"
        "from candleflow.studies.tune import tune\nfrom candleflow.images.store import ImageWriter\n"
        "try:\n    tune(load_config(None, ['source.n_bars=600']))\nexcept MissingExtraError as exc:\n    print(exc)\n"
        "try:\n    ImageWriter('x.zarr', 4, (8, 8), ['S'], 'zarr')\nexcept MissingExtraError as exc:\n    print(exc)\n"
    )
    proc = _child(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "candleflow tune needs optuna, which is not installed: pip install 'candleflow[tune]'",
        "images.format zarr needs zarr, which is not installed: pip install 'candleflow[images]'",
    ]
    assert not (tmp_path / "x.zarr").exists()
