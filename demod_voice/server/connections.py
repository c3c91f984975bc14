"""One bound on open connections for HTTP and Wyoming together, below the process's descriptor limit.

uvicorn's ``limit_concurrency`` answers 503 only once a request arrives, so connections that never send one
pile up until ``accept`` fails with EMFILE; then nothing (not ``/health``, not Wyoming) gets in, and asyncio
logs the failure in a tight loop. Here:

- ``Gate`` counts every open connection of both front ends against a limit computed from ``RLIMIT_NOFILE``
  (minus what is open at start and a reserve for files, the cache and outbound calls);
- an HTTP connection that has not sent its request headers within ``server.header_timeout_s`` is closed, and
  when the gate is full the oldest such idle connection makes room for the newcomer (idle sockets cannot
  lock real clients out); with no idle one to close, the newcomer gets a fast 503 and a close;
- accept failures (out of descriptors) are logged at most once per ``LOG_EVERY_S``.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

#: Descriptors kept for everything else: open files, the cache database, logs, outbound calls, threads.
RESERVE = 64
#: The least often a repeated warning (accept failures, refusals) is logged.
LOG_EVERY_S = 10.0

_BUSY_BODY = (b'{"error": {"message": "the server has too many open connections; try again shortly", '
              b'"type": "server_error", "code": "busy"}}')
BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
                 b"retry-after: 1\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


def descriptor_budget(reserve: int = RESERVE) -> int:
    """Connections this process can hold: the soft ``RLIMIT_NOFILE`` less what is open now and ``reserve``."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1024
    if soft == getattr(__import__("resource"), "RLIM_INFINITY", -1) or soft <= 0:
        soft = 1 << 20
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 32
    return max(4, soft - open_now - reserve)


class Throttled:
    """A warning logged at most once per ``every`` seconds, with the count of those held back."""

    def __init__(self, every: float = LOG_EVERY_S):
        self.every = every
        self.last = -float("inf")
        self.held = 0

    def warn(self, message: str, *args) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.held += 1
            return
        more = f" ({self.held} more like it since)" if self.held else ""
        _LOGGER.warning(message + more, *args)
        self.last, self.held = now, 0


class Gate:
    """Open connections of every front end, bounded; the event loop's thread only (no lock needed)."""

    def __init__(self, limit: int):
        self.limit = max(1, int(limit))
        self.open = 0
        self.refused = 0
        self.evicted = 0
        self._live: set[object] = set()
        self._idle: OrderedDict[object, Callable[[], None]] = OrderedDict()
        self._log = Throttled()

    def enter(self, close: Callable[[], None] | None = None, idle: bool = True) -> object | None:
        """A token for a new connection, or None (refuse it). ``idle`` connections (no request yet) can be
        closed by ``close`` to make room for a newcomer."""
        if self.open >= self.limit:
            if not self._idle:
                self.refused += 1
                self._log.warn("%d connections are open (the limit from RLIMIT_NOFILE and the configured "
                               "maxima); refusing new ones", self.open)
                return None
            oldest, closer = self._idle.popitem(last=False)
            self._drop(oldest)
            self.evicted += 1
            self._log.warn("connections at the limit (%d): closing the oldest that never sent a request",
                           self.limit)
            closer()
        token = object()
        self._live.add(token)
        self.open += 1
        if idle and close is not None:
            self._idle[token] = close
        return token

    def busy(self, token: object | None) -> None:
        """The connection sent a request: it is no longer closed to make room."""
        self._idle.pop(token, None)

    def leave(self, token: object | None) -> None:
        self._idle.pop(token, None)
        self._drop(token)

    def _drop(self, token: object | None) -> None:
        if token in self._live:
            self._live.discard(token)
            self.open -= 1

    def stats(self) -> dict:
        return {"open": self.open, "limit": self.limit, "refused": self.refused, "evicted": self.evicted}


def guarded_protocol(gate: Gate, header_timeout: float):
    """uvicorn's HTTP protocol class, counted by ``gate`` and closed when no request headers arrive in time."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base

        headers_hook = "on_headers_complete"
    except ImportError:  # httptools missing: h11 (a request counts as started at its first bytes)
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

        headers_hook = None

    class Guarded(Base):
        _gate_token = None
        _header_timer = None

        def connection_made(self, transport) -> None:
            self._gate_token = gate.enter(transport.close)
            if self._gate_token is None:
                try:
                    transport.write(BUSY_RESPONSE)
                finally:
                    transport.close()
                return
            super().connection_made(transport)
            self._header_timer = self.loop.call_later(header_timeout, self._no_request, transport)

        def _no_request(self, transport) -> None:
            if self._gate_token is not None and self._header_timer is not None:
                transport.close()  # nothing asked within server.header_timeout_s

        def _started(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            gate.busy(self._gate_token)

        def data_received(self, data: bytes) -> None:
            if self._gate_token is None:
                return
            super().data_received(data)
            if headers_hook is None:
                self._started()

        def connection_lost(self, exc) -> None:
            if self._gate_token is None:
                return  # refused before uvicorn saw it
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            gate.leave(self._gate_token)
            super().connection_lost(exc)

    if headers_hook:
        def on_headers_complete(self) -> None:
            self._started()
            Base.on_headers_complete(self)

        Guarded.on_headers_complete = on_headers_complete
    return Guarded


def quiet_accept_errors(loop) -> None:
    """Log asyncio's "socket.accept() out of system resource" at most once per ``LOG_EVERY_S``."""
    throttle = Throttled()

    def handler(loop, context) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            exc = context.get("exception")
            throttle.warn("cannot accept connections: %s", getattr(exc, "strerror", None) or exc)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
