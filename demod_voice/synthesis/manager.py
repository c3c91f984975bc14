"""The one model manager: every model an engine loads in this process, and when it goes.

Each engine's ``load()`` asks ``MODELS.get(engine, key, load)`` instead of keeping a cache of its own.
The key says what the model *is* (its file's identity: path, size and modification time; the device;
the settings the loaded object depends on), never ``id()`` of anything, so a replaced file is a new model.

* **LRU**: with ``engines.max_loaded`` > 0, loading one more model unloads the least recently used;
  an engine may also cap its own entries (``limit``).
* **Idle unload**: with ``server.model_idle_unload_s`` > 0 (the server only; the CLI keeps models for its
  one run), a model unused for that long is unloaded by a background thread; the next request reloads it.
* **Unload** drops the manager's reference and calls the model's ``unload()`` when it has one (a request
  still running on it keeps it alive until it ends), then collects garbage so the memory goes back.
* **Reported** by ``status()``: ``/api/engines`` and ``/metrics`` show what is loaded, where, its size
  and when it was last used.

Thread-safe: one lock for the table; loads of different models run in parallel, two loads of the same
model do not (the second waits and gets the first's).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Loaded:
    """One model in memory."""

    engine: str
    key: tuple
    model: Any
    device: str
    bytes: int
    label: str
    loaded_at: float
    last_used: float

    def to_dict(self) -> dict:
        return {"engine": self.engine, "model": self.label, "device": self.device, "bytes": self.bytes,
                "loaded_at": round(self.loaded_at, 3), "last_used": round(self.last_used, 3),
                "idle_s": round(max(0.0, time.time() - self.last_used), 3)}


class ModelManager:
    def __init__(self, max_loaded: int = 0, idle_unload_s: float = 0.0):
        self.max_loaded = max_loaded
        self.idle_unload_s = idle_unload_s
        self._models: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()
        self.loads = 0
        self.unloads = 0

    def configure(self, cfg) -> None:
        """Take ``engines.max_loaded`` from the config (the CLI, batch and the server alike)."""
        self.max_loaded = int(cfg.get("engines.max_loaded") or 0)

    # -- the one way to get a model ------------------------------------------------------------------------
    def get(self, engine: str, key: Hashable, load: Callable[[], T], *, device: str = "", label: str = "",
            size: Callable[[T], int] | int | None = None, limit: int = 0) -> T:
        """The model ``(engine, key)``, loaded with ``load()`` on first use (or after it was unloaded)."""
        full = (engine, key)
        found = self._touch(full)
        if found is not None:
            return found
        with self._lock:
            gate = self._loading.setdefault(full, threading.Lock())
        with gate:
            found = self._touch(full)
            if found is not None:
                return found
            model = load()
            now = time.time()
            nbytes = size(model) if callable(size) else int(size or _size_of(model))
            where = getattr(model, "device", None)  # where it ended up ("auto" and "gpu" may fall back to the CPU)
            entry = Loaded(engine, full, model, where if isinstance(where, str) else device, nbytes,
                           label or str(key), now, now)
            with self._lock:
                self._models[full] = entry
                self._loading.pop(full, None)
                self.loads += 1
                evicted = self._over_limits(engine, limit)
        _LOGGER.info("loaded %s model %s on %s", engine, entry.label, device or "-")
        self._release(evicted, "least recently used")
        return model

    def _touch(self, full: tuple):
        with self._lock:
            entry = self._models.get(full)
            if entry is None:
                return None
            entry.last_used = time.time()
            self._models.move_to_end(full)
            return entry.model

    def _over_limits(self, engine: str, limit: int) -> list[Loaded]:
        """Entries to unload after a load (lock held): the engine's own cap, then the process's."""
        out = []
        if limit:
            own = [k for k, e in self._models.items() if e.engine == engine]
            for k in own[: max(0, len(own) - limit)]:
                out.append(self._models.pop(k))
        while self.max_loaded and len(self._models) > self.max_loaded:
            out.append(self._models.popitem(last=False)[1])
        return out

    # -- unloading -----------------------------------------------------------------------------------------
    def unload(self, engine: str | None = None, key: Hashable | None = None) -> int:
        """Unload one model, an engine's models, or all of them; how many went."""
        with self._lock:
            chosen = [k for k, e in self._models.items()
                      if (engine is None or e.engine == engine) and (key is None or k == (engine, key))]
            gone = [self._models.pop(k) for k in chosen]
        self._release(gone, "asked")
        return len(gone)

    def unload_model(self, model: Any) -> bool:
        """Unload the entry holding this very object (an engine handle's ``unload()``); False when none does."""
        with self._lock:
            chosen = [k for k, e in self._models.items() if e.model is model]
            gone = [self._models.pop(k) for k in chosen]
        self._release(gone, "asked")
        return bool(gone)

    def unload_idle(self, now: float | None = None) -> int:
        """Unload every model unused for ``idle_unload_s`` (nothing when it is 0)."""
        if not self.idle_unload_s:
            return 0
        cutoff = (now or time.time()) - self.idle_unload_s
        with self._lock:
            gone = [self._models.pop(k) for k, e in list(self._models.items()) if e.last_used <= cutoff]
        self._release(gone, f"idle for {self.idle_unload_s:g} s")
        return len(gone)

    def _release(self, entries: list[Loaded], why: str) -> None:
        if not entries:
            return
        for entry in entries:
            _LOGGER.info("unloading %s model %s (%s)", entry.engine, entry.label, why)
            close = getattr(entry.model, "unload", None)
            if callable(close):
                try:
                    close()
                except Exception:  # a model that fails to close is still dropped
                    _LOGGER.warning("unloading %s model %s failed", entry.engine, entry.label, exc_info=True)
            entry.model = None
        with self._lock:
            self.unloads += len(entries)
        del entry
        gc.collect()
        _return_memory()

    # -- idle unload in the background (the server) ------------------------------------------------------
    def start_idle_unload(self, idle_unload_s: float) -> None:
        """Unload models idle for ``idle_unload_s`` from a daemon thread (0: off); checks a few times per period."""
        self.idle_unload_s = float(idle_unload_s or 0)
        if not self.idle_unload_s or self._reaper is not None:
            return
        self._stop.clear()
        period = min(5.0, max(0.2, self.idle_unload_s / 4))

        def reap() -> None:
            while not self._stop.wait(period):
                try:
                    self.unload_idle()
                except Exception:
                    _LOGGER.warning("idle unload failed", exc_info=True)

        self._reaper = threading.Thread(target=reap, name="model-idle-unload", daemon=True)
        self._reaper.start()

    def stop_idle_unload(self) -> None:
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
        self._reaper = None

    # -- reporting -----------------------------------------------------------------------------------------
    def status(self, engine: str | None = None) -> list[dict]:
        with self._lock:
            return [e.to_dict() for e in self._models.values() if engine is None or e.engine == engine]

    def loaded(self, engine: str) -> bool:
        with self._lock:
            return any(e.engine == engine for e in self._models.values())


def _size_of(model: Any) -> int:
    """The model's own figure (``nbytes``) when it has one, else 0 (unknown)."""
    value = getattr(model, "nbytes", 0)
    try:
        return int(value() if callable(value) else value)
    except Exception:
        return 0


def _return_memory() -> None:
    """Hand freed heap back to the system (glibc keeps it otherwise), so RSS shows the unload."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


#: The process's models.
MODELS = ModelManager()
