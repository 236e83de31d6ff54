"""The docs stay true: the config reference is generated from the models, and links resolve."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "docs" / "gen_config_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_is_current():
    committed = (ROOT / "docs" / "reference" / "config.md").read_text()
    assert committed == _generator().render(), "run: python docs/gen_config_reference.py"


def test_config_reference_names_every_key_with_its_default():
    from candleflow.config import DatasetConfig, LabelConfig, RunConfig

    page = _generator().render()
    for section in RunConfig.model_fields:
        assert f"| `{section}` |" in page
    assert "| `horizon` | int | `24` | >= 1 | bars after the entry bar the trades may run |" in page
    for name in list(DatasetConfig.model_fields) + list(LabelConfig.model_fields):
        assert f"| `{name}` |" in page


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+://|#|mailto:", t)]


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))]
)
def test_relative_links_resolve(page):
    path = ROOT / page
    for target in _links(path):
        assert (path.parent / target.split("#")[0]).exists(), f"{page}: link to {target} is broken"


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160
    head = "\n".join(lines[:10])
    assert "pip install -e . && candleflow run" in head
    assert 'pip install -e ".[test]" && python -m pytest -q' in head
