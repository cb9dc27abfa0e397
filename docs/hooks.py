"""mkdocs hooks for hetgrad's docs: tables made from the project itself at build time.

``<!-- benchmark-results -->`` in a page is replaced by ``benchmarks/results/latest.md``
(written by ``python -m benchmarks``), or by a note saying how to produce it;
``<!-- lifted-functions -->`` by the NumPy names hetgrad differentiates, read from its
dispatch tables, so the list cannot fall behind the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKER = "<!-- benchmark-results -->"
LIFTED_MARKER = "<!-- lifted-functions -->"
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "latest.md"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, benchmark_tables())
    if LIFTED_MARKER in markdown:
        markdown = markdown.replace(LIFTED_MARKER, lifted_functions())
    return markdown


def benchmark_tables() -> str:
    if RESULTS.is_file():
        return RESULTS.read_text(encoding="utf-8")
    return (
        "!!! note\n    No benchmark results in this checkout: run "
        "`python -m benchmarks` to write `benchmarks/results/latest.md`."
    )


def lifted_functions() -> str:
    """The lifted NumPy names as Markdown: the ufuncs with gradients, those with zero
    gradient (plain results), and the functions."""
    import numpy as np

    import hetgrad  # noqa: F401  (registers the lifted functions)
    from hetgrad import rules

    public: dict[int, list[str]] = {}
    for module, prefix in ((np, ""), (np.linalg, "linalg.")):
        for name in dir(module):
            if not name.startswith("_"):
                public.setdefault(id(getattr(module, name)), []).append(prefix + name)

    def names(objects: Any) -> str:
        found = sorted({n for f in objects for n in public.get(id(f), [])})
        return ", ".join(f"`{n}`" for n in found)

    return (
        f"**Ufuncs with gradients:** {names([*rules.UFUNCS, *rules.COMPOSED_UFUNCS])}.\n\n"
        "**Ufuncs with zero gradient** (they return plain values): "
        f"{names(rules.PIECEWISE_CONSTANT_UFUNCS)}.\n\n"
        f"**Functions:** {names(rules.FUNCTIONS)}.\n"
    )
