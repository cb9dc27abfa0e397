"""The main demo: ``python -m hetgrad.examples [--out DIR] [--quick]``.

Trains the three seed models one after the other and writes their pictures to ``--out``
(default ``demo-output``): the Goal regression (SGD vs momentum vs Adam), the two-moons
MLP of scalar neurons, and the MNIST classifier for one epoch when the MNIST files are
available (``HETGRAD_MNIST`` or ``--data``), with a clear message otherwise.
"""

from __future__ import annotations

import argparse
import os

from . import mnist, moons, regression


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hetgrad.examples", description=__doc__)
    parser.add_argument("--out", default="demo-output", help="folder for the pictures")
    parser.add_argument("--data", default=None, help="folder of the MNIST files")
    parser.add_argument("--quick", action="store_true", help="MNIST on 10,000 images only")
    args = parser.parse_args(argv)
    common = ["--out", args.out, "--no-progress"]

    print("== Regression: exp(sin 2x), SGD vs momentum vs Adam ==")
    regression.main(common)
    print("\n== Two moons: an MLP of scalar neurons ==")
    moons.main(common)
    print("\n== MNIST: 784-300-100-10, one sample per SGD step ==")
    data = args.data or os.environ.get("HETGRAD_MNIST")
    if not data:
        print("Skipped: no MNIST data. Point HETGRAD_MNIST (or --data) at a folder with the "
              "four IDX files (train-images-idx3-ubyte.gz, ...), or fetch them with "
              "hetgrad.datasets.load_mnist(folder, download=True, url=MIRROR).")
    else:
        mnist.main(common + ["--data", data] + (["--limit", "10000"] if args.quick else []))
    print(f"\nPictures are in {args.out}/")


if __name__ == "__main__":
    main()
