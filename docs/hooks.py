"""mkdocs hooks for hetgrad's docs: include the latest benchmark tables.

``<!-- benchmark-results -->`` in a page is replaced by ``benchmarks/results/latest.md``
(written by ``python -m benchmarks``), or by a note saying how to produce it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKER = "<!-- benchmark-results -->"
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "latest.md"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    if RESULTS.is_file():
        tables = RESULTS.read_text(encoding="utf-8")
    else:
        tables = (
            "!!! note\n    No benchmark results in this checkout: run "
            "`python -m benchmarks` to write `benchmarks/results/latest.md`."
        )
    return markdown.replace(MARKER, tables)
