"""The documentation cannot rot: its code runs, its pages are built, its names are documented.

Each page of ``docs/`` has its ```` ```python ```` blocks executed in order, in one
namespace per page (a block may use what an earlier block of the same page defined), in a
temporary working folder.  Blocks fenced as ``pycon``, ``sh`` or ``text`` are shown, not
run.  The README's blocks are run by ``test_readme.py``.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


def python_blocks(page: str) -> list[tuple[int, str]]:
    """The page's runnable blocks with the line each starts on."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)])
def test_page_code_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType(f"docs_{Path(page).stem}")  # a real module, as dataclasses expect
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for line, code in python_blocks(page):
        block = compile(code, f"docs/{page}, block at line {line}", "exec", dont_inherit=True)
        exec(block, module.__dict__)


@pytest.mark.parametrize("page", ["tutorial.md", "extending.md", "concepts.md", "performance.md"])
def test_prose_pages_show_code(page: str) -> None:
    assert python_blocks(page), f"docs/{page} should show runnable Python"


def test_every_page_is_in_the_navigation() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)

    def walk(items: object) -> list[str]:
        if isinstance(items, str):
            return [items]
        if isinstance(items, list):
            return [p for item in items for p in walk(item)]
        if isinstance(items, dict):
            return [p for value in items.values() for p in walk(value)]
        return []

    assert sorted(walk(config["nav"])) == PAGES


PUBLIC_MODULES = [
    "hetgrad", "hetgrad.numpy", "hetgrad.nn", "hetgrad.lens", "hetgrad.optim",
    "hetgrad.datasets", "hetgrad.checkpoint", "hetgrad.tree", "hetgrad.laws",
]  # fmt: skip


def public_functions() -> list[tuple[str, str]]:
    out = []
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isfunction(obj) and obj.__module__.startswith("hetgrad"):
                out.append((name, attr))
    return out


@pytest.mark.parametrize(("module", "name"), public_functions())
def test_public_functions_have_an_example(module: str, name: str) -> None:
    obj = getattr(importlib.import_module(module), name)
    assert ">>>" in (inspect.getdoc(obj) or ""), f"{module}.{name} has no example"


@pytest.mark.parametrize("module", [m for m in PUBLIC_MODULES if m != "hetgrad.laws"])
def test_public_modules_have_an_api_page(module: str) -> None:
    api = "".join((DOCS / p).read_text() for p in PAGES if p.startswith("api/"))
    assert f"::: {module}\n" in api


def test_top_level_names_are_on_the_api_page() -> None:
    import hetgrad

    page = (DOCS / "api" / "hetgrad.md").read_text()
    modules = {"checkpoint", "datasets", "lens", "nn", "optim"}
    page = page.replace("::: hetgrad.primitive.primitive", "::: hetgrad.primitive")  # a module too
    missing = [n for n in hetgrad.__all__ if n not in modules and f"::: hetgrad.{n}\n" not in page]
    assert not missing, f"not on docs/api/hetgrad.md: {missing}"
