"""hetgrad's benchmark suite: ``python -m benchmarks`` (see ``harness.py``)."""
