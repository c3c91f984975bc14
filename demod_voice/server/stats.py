"""Per-engine statistics (requests, failures, moving-average latency) and the breaker's state."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass
class EngineStats:
    requests: int = 0
    successes: int = 0
    failures: int = 0
    fallbacks: int = 0
    """Times this engine was skipped or failed and the next one was tried."""
    latency_avg_s: float | None = None
    """Exponential moving average (alpha 0.2) of the time to complete a request."""
    first_chunk_avg_s: float | None = None
    consecutive_failures: int = 0
    open_until: float = 0.0
    last_error: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["circuit"] = "open" if self.open_until > time.time() else "closed"
        return out


def ema(old: float | None, new: float, alpha: float = 0.2) -> float:
    return new if old is None else (1 - alpha) * old + alpha * new
