"""One audio cache and one de-duplication for the whole application, on a Serve deployment of one replica.

``CacheDeployment`` owns the existing ``AudioCache`` (SQLite index + one file per entry, under
``ray_serve.cache_dir``) and the in-flight claims: the first request for a key anywhere in the application
becomes its leader, the others wait for it, and a repeat is a hit whichever ingress replica answered the
first. It talks only through Serve handles (no protocol of our own). A multi-node cluster keeps the folder on
storage every node may reach (as batch requires); the one replica is the only writer, so SQLite's locking
never crosses a network file system.

``SharedCache`` is what an ingress replica's ``Service`` holds instead of its own ``AudioCache``: the same
methods (``get``, ``claim``, ``stats``, ``invalidate``, ``close``), each a handle call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time

from ray import serve

from demod_voice.cache import AudioCache, Entry

_LOGGER = logging.getLogger(__name__)


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)
class CacheDeployment:
    """The audio cache and the claims of keys being computed, for every replica of the application."""

    def __init__(self, root: str, max_bytes: int, claim_ttl_s: float):
        self.cache = AudioCache(root, max_bytes)
        self.claim_ttl_s = claim_ttl_s
        self.claims: dict[str, tuple[asyncio.Future, float]] = {}

    def _live_claim(self, key: str) -> asyncio.Future | None:
        held = self.claims.get(key)
        if held is None:
            return None
        future, since = held
        if time.monotonic() - since > self.claim_ttl_s:  # its leader died with its replica: release it
            self.claims.pop(key, None)
            if not future.done():
                future.set_result(None)
            return None
        return future

    async def get(self, key: str) -> Entry | None:
        return await asyncio.to_thread(self.cache.get, key)

    async def claim(self, key: str) -> bool:
        """True: the caller computes ``key`` (leader); False: someone else is, ``wait`` for it."""
        if self._live_claim(key) is not None:
            return False
        self.claims[key] = (asyncio.get_running_loop().create_future(), time.monotonic())
        return True

    async def wait(self, key: str, timeout: float) -> Entry | None:
        """The leader's result, or None when it failed, died or took longer than ``timeout``."""
        future = self._live_claim(key)
        if future is None:
            return await asyncio.to_thread(self.cache.get, key)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None

    async def resolve(self, key: str, data: bytes | None, meta: dict | None, tag: str, store: bool) -> None:
        if data is not None and store:
            await asyncio.to_thread(self.cache.put, key, data, meta or {}, tag)
        held = self.claims.pop(key, None)
        if held is not None and not held[0].done():
            held[0].set_result(None if data is None else Entry(key, data, meta or {}))

    async def stats(self) -> dict:
        out = await asyncio.to_thread(self.cache.stats)
        return {**out, "in_flight": len(self.claims), "root": str(self.cache.root)}

    async def invalidate(self, tag: str) -> int:
        return await asyncio.to_thread(self.cache.invalidate, tag)


class SharedClaim:
    """A claim held in the cache deployment, shaped like ``cache.Claim`` for the ``Service``."""

    def __init__(self, owner: SharedCache, key: str, leader: bool, wait_s: float):
        self.owner, self.key, self.leader = owner, key, leader
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        if not leader:
            threading.Thread(target=self._follow, args=(wait_s,), daemon=True, name="cache-wait").start()

    def _follow(self, wait_s: float) -> None:
        try:
            self.future.set_result(self.owner.handle.wait.remote(self.key, wait_s).result(timeout_s=wait_s + 30))
        except Exception as exc:  # the cache replica is gone or slow: compute without it
            _LOGGER.warning("waiting for a shared cache claim failed: %s", exc)
            self.future.set_result(None)

    def resolve(self, data: bytes | None, meta: dict | None = None, tag: str = "", store: bool = True) -> None:
        """Publish the leader's result; sent without waiting (the ``Service`` calls this on its event loop)."""
        self.owner.handle.resolve.remote(self.key, data, meta or {}, tag, store)
        if not self.future.done():
            self.future.set_result(None if data is None else Entry(self.key, data, meta or {}))

    def wait(self, timeout: float | None = None) -> Entry | None:
        return self.future.result(timeout)


class SharedCache:
    """The ingress side of ``CacheDeployment``: ``AudioCache``'s methods as handle calls.

    ``get`` and ``claim`` block (the ``Service`` calls them in a worker thread); ``stats`` answers from a
    snapshot that a background thread refreshes, so ``/health`` and ``/metrics`` never wait on the cache.
    """

    def __init__(self, handle, wait_s: float, refresh_s: float = 2.0):
        self.handle = handle
        self.wait_s = wait_s
        self.hits = 0
        self.misses = 0
        self._snapshot: dict = {}
        self._stop = threading.Event()
        self._refresh_s = refresh_s
        threading.Thread(target=self._refresh, daemon=True, name="cache-stats").start()
        from demod_voice import cache as cache_mod

        with cache_mod._OPEN_LOCK:  # a voice whose reference changes invalidates this cache too
            cache_mod._OPEN.add(self)

    def _refresh(self) -> None:
        while not self._stop.is_set():
            try:
                self._snapshot = self.handle.stats.remote().result(timeout_s=30)
            except Exception as exc:  # shown as unknown until the replica answers again
                _LOGGER.debug("cache stats: %s", exc)
            self._stop.wait(self._refresh_s)

    def get(self, key: str) -> Entry | None:
        entry = self.handle.get.remote(key).result(timeout_s=60)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def claim(self, key: str) -> SharedClaim:
        return SharedClaim(self, key, self.handle.claim.remote(key).result(timeout_s=60), self.wait_s)

    def invalidate(self, tag: str) -> int:
        return self.handle.invalidate.remote(tag).result(timeout_s=60)

    def stats(self) -> dict:
        """The whole application's cache (entries, bytes, hits and misses of every replica)."""
        return dict(self._snapshot) or {"entries": None, "bytes": None, "max_bytes": None, "hits": 0,
                                        "misses": 0, "in_flight": 0}

    def close(self) -> None:
        self._stop.set()
