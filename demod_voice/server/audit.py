"""The audit log of fallbacks and upstream failures: a log line, a JSON-lines file, a short history and counters."""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)
_AUDIT = logging.getLogger("demod_voice.audit")


class AuditLog:
    """Fallback events: a log line, a JSON-lines file, a short in-memory history and counters."""

    def __init__(self, path: Path | None, keep: int = 200):
        self.path = path
        self.recent: collections.deque = collections.deque(maxlen=keep)
        self.counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def record(self, **event: Any) -> None:
        """One event: ``fallback`` (counted), or ``upstream`` (the last engine's server answered badly).
        An ``internal`` field (another server's URL and own words) is for the file and admins only."""
        event = {"time": round(time.time(), 3), "event": "fallback", **event}
        _AUDIT.warning("%s from %s (%s: %s) for voice %s%s", event["event"], event.get("engine"), event.get("reason"),
                       event.get("detail"), event.get("voice"),
                       f" [{event['internal']}]" if event.get("internal") else "")
        with self._lock:
            self.recent.append(event)
            if event["event"] == "fallback":
                self.counts[(event.get("engine", ""), event.get("reason", ""))] += 1
            if self.path is not None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with open(self.path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(event) + "\n")
                except OSError as exc:
                    _LOGGER.warning("cannot write the audit log %s: %s", self.path, exc)
