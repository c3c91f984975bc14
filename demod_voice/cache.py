"""Content-addressed audio cache: an SQLite index plus one file per entry.

The key is a SHA-256 over everything that determines the bytes: normalised
text, the engine chain with each engine's model version, the voice with its
reference hash, the synthesis parameters and the output format
(``make_key``). Entries are evicted least-recently-used once the total size
passes the limit. Each entry carries a *tag* (``user/voice``) so a voice's
entries can be dropped when its reference changes. Identical requests that
arrive while one is being computed wait for it instead of computing again
(``claim`` / ``Claim.resolve``).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demod_voice import audio as audio_mod
from demod_voice.text import normalize

_LOGGER = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    tag TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    accessed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_accessed ON entries(accessed);
CREATE INDEX IF NOT EXISTS entries_tag ON entries(tag);
"""

#: Every cache opened in this process, so a reference change can invalidate them all.
_OPEN: weakref.WeakSet[AudioCache] = weakref.WeakSet()
_OPEN_LOCK = threading.Lock()


def make_key(text: str, **parts: Any) -> str:
    """The content address of a request: normalised text plus every other input."""
    payload = json.dumps({"text": normalize(text), **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class Entry:
    key: str
    data: bytes
    meta: dict


class Claim:
    """The right (``leader``) or the wait (follower) for one key being computed."""

    def __init__(self, cache: AudioCache, key: str, future: concurrent.futures.Future, leader: bool):
        self.cache, self.key, self.future, self.leader = cache, key, future, leader

    def resolve(self, data: bytes | None, meta: dict | None = None, tag: str = "", store: bool = True) -> None:
        """Leader: publish the result (``None`` = failed; followers then compute themselves)."""
        if data is not None and store:
            try:
                self.cache.put(self.key, data, meta or {}, tag)
            except (OSError, sqlite3.Error) as exc:  # out of descriptors or disk: the answer itself still goes out
                _LOGGER.warning("audio cache: cannot store an answer (%s); serving it uncached", exc)
        with self.cache._lock:
            self.cache._inflight.pop(self.key, None)
        if not self.future.done():
            self.future.set_result(None if data is None else Entry(self.key, data, meta or {}))

    def wait(self, timeout: float | None = None) -> Entry | None:
        return self.future.result(timeout)


class AudioCache:
    """Thread-safe; one instance per folder per process is enough."""

    def __init__(self, root: Path | str, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.root / "index.sqlite"), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._inflight: dict[str, concurrent.futures.Future] = {}
        self.hits = 0
        self.misses = 0
        with _OPEN_LOCK:
            _OPEN.add(self)

    @staticmethod
    def from_config(cfg, enabled: bool | None = None) -> AudioCache | None:
        """The configured cache, or ``None`` when disabled (``cache.enabled``)."""
        if not (cfg.get("cache.enabled") if enabled is None else enabled):
            return None
        root = cfg.get("cache.dir") or (cfg.cache_dir / "audio")
        return AudioCache(root, cfg.get("cache.max_size_mb") * 1024 * 1024)

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.bin"

    def get(self, key: str) -> Entry | None:
        with self._lock:
            row = self._db.execute("SELECT meta FROM entries WHERE key=?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            try:
                data = self._file(key).read_bytes()
            except FileNotFoundError:
                self._db.execute("DELETE FROM entries WHERE key=?", (key,))
                self.misses += 1
                return None
            self._db.execute("UPDATE entries SET accessed=? WHERE key=?", (time.time(), key))
            self.hits += 1
            return Entry(key, data, json.loads(row[0]))

    def put(self, key: str, data: bytes, meta: dict | None = None, tag: str = "") -> None:
        if len(data) > self.max_bytes:
            return
        path = self._file(key)
        path.parent.mkdir(exist_ok=True)
        audio_mod.atomic_write_bytes(path, data)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO entries(key, size, tag, meta, created, accessed) VALUES (?,?,?,?,?,?)",
                (key, len(data), tag, json.dumps(meta or {}), now, now))
            self._evict()

    def _evict(self) -> None:
        total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0]
        if total <= self.max_bytes:
            return
        for key, size in self._db.execute("SELECT key, size FROM entries ORDER BY accessed ASC").fetchall():
            if total <= self.max_bytes:
                break
            self._drop(key)
            total -= size

    def _drop(self, key: str) -> None:
        self._db.execute("DELETE FROM entries WHERE key=?", (key,))
        try:
            self._file(key).unlink()
        except FileNotFoundError:
            pass

    def invalidate(self, tag: str) -> int:
        """Drop every entry with this tag (``user/voice``); returns how many."""
        with self._lock:
            keys = [k for (k,) in self._db.execute("SELECT key FROM entries WHERE tag=?", (tag,)).fetchall()]
            for key in keys:
                self._drop(key)
        if keys:
            _LOGGER.info("dropped %d cached entries of %s", len(keys), tag)
        return len(keys)

    def clear(self) -> None:
        with self._lock:
            for (key,) in self._db.execute("SELECT key FROM entries").fetchall():
                self._drop(key)

    def stats(self) -> dict:
        with self._lock:
            count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        return {"entries": count, "bytes": size, "max_bytes": self.max_bytes, "hits": self.hits,
                "misses": self.misses, "in_flight": len(self._inflight)}

    def claim(self, key: str) -> Claim:
        """Become the one computing ``key``, or get a handle to wait for whoever is."""
        with self._lock:
            future = self._inflight.get(key)
            if future is not None:
                return Claim(self, key, future, leader=False)
            future = self._inflight[key] = concurrent.futures.Future()
            return Claim(self, key, future, leader=True)

    def get_or_compute(self, key: str, compute: Callable[[], tuple[bytes, dict]], tag: str = "") -> tuple[Entry, bool]:
        """(entry, hit): the cached bytes, or compute them once however many threads ask at the same time."""
        while True:
            entry = self.get(key)
            if entry is not None:
                return entry, True
            claim = self.claim(key)
            if not claim.leader:
                result = claim.wait()
                if result is not None:
                    return result, True
                continue  # the leader failed: try ourselves
            try:
                data, meta = compute()
            except BaseException:
                claim.resolve(None)
                raise
            claim.resolve(data, meta, tag)
            return Entry(key, data, meta), False

    def close(self) -> None:
        with _OPEN_LOCK:
            _OPEN.discard(self)  # a closed cache is no longer one to invalidate (it may linger until collected)
        with self._lock:
            self._db.close()


def invalidate_everywhere(tag: str) -> int:
    """Invalidate ``tag`` in every cache open in this process, and in the default one on disk."""
    with _OPEN_LOCK:
        caches = list(_OPEN)
    return sum(c.invalidate(tag) for c in caches)


def invalidate_on_disk(root: Path | str, tag: str) -> int:
    """For the CLI: drop a tag from a cache folder that is not open here (no-op when absent)."""
    root = Path(root)
    if not (root / "index.sqlite").is_file():
        return 0
    with _OPEN_LOCK:
        for cache in _OPEN:
            if cache.root.resolve() == root.resolve():
                return cache.invalidate(tag)
    cache = AudioCache(root, 1 << 62)
    try:
        return cache.invalidate(tag)
    finally:
        cache.close()


def default_root(cfg) -> Path:
    return Path(cfg.get("cache.dir") or (cfg.cache_dir / "audio"))

