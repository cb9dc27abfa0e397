"""The runnable examples run end to end and do what they claim."""

from __future__ import annotations

from hetgrad.examples import quickstart


def test_quickstart_loss_falls(capsys: object) -> None:
    final = quickstart.main(["--epochs", "2", "--seed", "1"])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    first = float(out.splitlines()[0].rsplit(" ", 1)[1])
    assert final < 0.2 * first
    assert "epoch 2" in out
