"""Waits between retries: exponential, capped, with jitter.

Jitter keeps two runners (or a runner and the application's own retries) from coming back to
the same lock at the same moment, again and again.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

CAP_SECONDS = 30.0


@dataclass(frozen=True)
class Backoff:
    first: float  # seconds before the first retry; doubles each retry

    def delay(self, retry: int, draw: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1-based): between half and all of the ceiling."""
        ceiling = min(self.first * 2.0 ** min(retry - 1, 64), max(self.first, CAP_SECONDS))
        return ceiling * (0.5 + draw() / 2)
