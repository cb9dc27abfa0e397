"""A griffe extension for the docs build: docstrings written for doctest, shown as Markdown.

hetgrad's docstrings are Google style, with doctest examples and Sphinx-style mentions of
other objects (``:func:`name```).  On the API pages each run of doctest lines becomes a
``pycon`` code block, and each role becomes a code span.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|obj|exc):`~?([^`]+)`")


def _fence_doctests(text: str) -> str:
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if in_fence or not stripped.startswith(">>>"):
            out.append(line if in_fence else _ROLE.sub(r"`\1`", line))
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestsAndRoles(griffe.Extension):
    """Fence doctest examples and turn Sphinx roles into code spans in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _fence_doctests(obj.docstring.value)
