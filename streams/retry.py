"""Exponential backoff with jitter, for every loop that waits for a service to come back.

Jitter keeps processes that failed together (every sink replica when ClickHouse restarts) from
retrying together; the lower half of each delay is kept so that a retry never comes immediately.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays that double from ``initial_s`` up to ``max_s``, each drawn from [d/2, d] ("equal jitter")."""

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        *,
        factor: float = 2.0,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        self._initial_s = initial_s
        self._max_s = max_s
        self._factor = factor
        self._uniform = uniform
        self._ceiling = initial_s

    def next_delay(self) -> float:
        ceiling = self._ceiling
        self._ceiling = min(ceiling * self._factor, self._max_s)
        return ceiling / 2 + self._uniform() * ceiling / 2

    def reset(self) -> None:
        self._ceiling = self._initial_s
