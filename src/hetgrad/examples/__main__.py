"""The main demo: ``python -m hetgrad.examples``."""

from __future__ import annotations

from . import quickstart

if __name__ == "__main__":
    quickstart.main([])
