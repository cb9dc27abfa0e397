"""Runnable examples: ``python -m hetgrad.examples.<name> --help``.

``python -m hetgrad.examples`` runs the main demo.
"""
