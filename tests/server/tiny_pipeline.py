"""A tiny pipeline the server tests load at start-up (``create_app(pipelines=[...])``).

``tiny`` adds up the numbers 1..n in three steps: ``numbers`` → ``hold`` → ``total``.
With ``wait=True`` the ``hold`` step blocks until a test sets :data:`GATE`, so a test
can look at an execution while it is running; ``explode=True`` fails ``total``.
``source`` and ``scale`` are not used by the steps: they are there to be validated.
"""

from __future__ import annotations

import threading
from pathlib import Path

from trivet.pipelines import Param, approval, pipeline, step

GATE = threading.Event()
"""Set by a test to let a waiting ``hold`` step finish."""


@step
def numbers(n: int) -> list[int]:
    print(f"making {n} numbers")
    return list(range(1, n + 1))


@step(cache=False)
def hold(xs: list[int], wait: bool) -> list[int]:
    if wait and not GATE.wait(timeout=30):
        raise TimeoutError("the test never opened the gate")
    return xs


@step(cache=False)
def total(xs: list[int], explode: bool) -> int:
    if explode:
        raise ValueError("exploded on purpose")
    print(f"total is {sum(xs)}")
    return sum(xs)


@pipeline
def tiny(
    n: int = Param(default=3, help="how many numbers"),
    wait: bool = False,
    explode: bool = False,
    source: Path | None = None,
    scale: float = 1.0,
) -> None:
    """Add up the numbers 1 to n."""
    total(hold(numbers(n), wait), explode)


@pipeline
def signed(n: int = 3) -> None:
    """Add up the numbers 1 to n once someone approves."""
    xs = numbers(n)
    approval("Add up the numbers to {n}?", n=n, then=lambda: total(xs, False), timeout=60)
