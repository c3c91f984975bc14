"""Bounded outbound HTTP: every call to another server ends by a deadline and reads at most a byte cap.

Other servers (remote engines, GPT-SoVITS, the voice catalogue, model mirrors) are not trusted to behave.
httpx's timeouts are per read, so a server that drips one byte a second never times out, and
``response.content`` reads a body of any size. Here:

- the deadline covers the whole exchange (connect, headers, body): every socket read is given only the time
  that is left, through an httpcore network backend that wraps the real one;
- the byte cap is checked against ``Content-Length`` before the body is read, and counted while it streams;
- a ``cancel`` event (the request was given up) ends the read within ``_POLL_S``;
- the jobs that make these calls run in their own bounded pool (``POOL``), never on the CPU synthesis workers.

``scope(deadline, cancel)`` sets the bounds for the calls made by the current thread (the server sets it for
each engine job), so engine code needs no extra arguments; a call's own ``timeout_s`` can only shorten it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demod_voice.errors import EngineError, LimitError, UpstreamError

#: How often a blocked read checks its cancel flag.
_POLL_S = 0.25
#: Outbound jobs at once (remote engines, GPT-SoVITS): waiting on the network costs no CPU.
POOL_SIZE = 8
_local = threading.local()


class OutboundTimeout(TimeoutError):
    """The other server did not finish within the deadline (or the call was cancelled)."""


class HTTPStatus(UpstreamError):
    """The other server answered with an error status."""

    def __init__(self, message: str, status: int, internal: str | None = None):
        super().__init__(message, internal=internal)
        self.status = status


class TooLarge(UpstreamError):
    """The other server announced or sent more bytes than the cap."""


_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def pool() -> concurrent.futures.ThreadPoolExecutor:
    """The bounded pool outbound engine jobs run in (separate from the CPU synthesis workers)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="outbound")
        return _pool


@contextlib.contextmanager
def scope(deadline: float | None = None, cancel: threading.Event | None = None):
    """Bound every outbound call made by this thread inside the block (``deadline``: ``time.monotonic()``)."""
    before = getattr(_local, "bounds", None)
    _local.bounds = (deadline, cancel)
    try:
        yield
    finally:
        _local.bounds = before


def _bounds(timeout_s: float) -> tuple[float, threading.Event | None]:
    deadline, cancel = getattr(_local, "bounds", None) or (None, None)
    own = time.monotonic() + timeout_s
    return (own if deadline is None else min(own, deadline)), cancel


# --- the deadline-enforcing network backend ------------------------------------------------------------

class _Clock:
    def __init__(self, deadline: float, cancel: threading.Event | None):
        self.deadline = deadline
        self.cancel = cancel

    def left(self) -> float:
        if self.cancel is not None and self.cancel.is_set():
            raise OutboundTimeout("cancelled")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise OutboundTimeout("deadline passed")
        return left


def http():
    """The HTTP client modules ``(httpx, httpcore)``: httpx where installed (the server extra), else the
    API-compatible httpx2 that the hub client brings (a model pull with only the xtts extra)."""
    try:
        import httpcore
        import httpx
    except ImportError:
        import httpcore2 as httpcore
        import httpx2 as httpx
    return httpx, httpcore


def _backend(clock: _Clock):
    _, httpcore = http()

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner):
            self.inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            while True:
                left = clock.left()
                wait = min(left, _POLL_S, timeout if timeout is not None else left)
                try:
                    return self.inner.read(max_bytes, wait)
                except httpcore.ReadTimeout:
                    if timeout is not None and wait >= timeout:
                        raise
                    if timeout is not None:
                        timeout -= wait

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.inner.write(buffer, min(clock.left(), timeout if timeout is not None else clock.left()))

        def close(self) -> None:
            self.inner.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            return Stream(self.inner.start_tls(ssl_context, server_hostname, min(clock.left(), timeout or clock.left())))

        def get_extra_info(self, info: str):
            return self.inner.get_extra_info(info)

    class Backend(httpcore.SyncBackend):
        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            wait = min(clock.left(), timeout if timeout is not None else clock.left())
            return Stream(super().connect_tcp(host, port, wait, local_address, socket_options))

        def connect_unix_socket(self, path, timeout=None, socket_options=None):
            wait = min(clock.left(), timeout if timeout is not None else clock.left())
            return Stream(super().connect_unix_socket(path, wait, socket_options))

    return Backend()


_context = None


def _ssl_context():
    """One verifying SSL context for every call (building one reads the CA bundle: slow on a busy machine)."""
    global _context
    with _pool_lock:
        if _context is None:
            _context = http()[0].create_ssl_context(trust_env=False)
        return _context


def warm() -> None:
    """Import the HTTP client and build the SSL context now (the server calls it in the background at start,
    so a remote's first request does not pay for them inside its first-audio timeout)."""
    try:
        _ssl_context()
    except ImportError:
        pass


def client(timeout_s: float, *, follow_redirects: bool = False, clock: _Clock | None = None):
    """An ``httpx.Client`` whose every read ends by the scope's deadline (or ``timeout_s`` from now)."""
    httpx, httpcore = http()

    if clock is None:
        clock = _Clock(*_bounds(timeout_s))
    context = _ssl_context()
    transport = httpx.HTTPTransport(verify=context, trust_env=False, retries=0)
    # httpx builds an httpcore pool; ours differs only in its network backend
    transport._pool = httpcore.ConnectionPool(ssl_context=context, max_connections=4, network_backend=_backend(clock))
    left = max(0.001, clock.deadline - time.monotonic())
    return httpx.Client(transport=transport, timeout=httpx.Timeout(left), follow_redirects=follow_redirects,
                        max_redirects=5, trust_env=False, headers={"Accept-Encoding": "identity"})


@dataclass
class Answer:
    """A bounded response: status, headers, and the body (at most the cap)."""

    status_code: int
    headers: dict
    content: bytes

    def json(self):
        import json

        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _announced(response) -> int | None:
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def body_pieces(response, max_bytes: int, what: str) -> Iterator[bytes]:
    """The body of an open ``httpx`` stream, refused past ``max_bytes`` (announced or counted)."""
    announced = _announced(response)
    if announced is not None and announced > max_bytes:
        raise TooLarge(f"{what} announced {announced} bytes; the limit is {max_bytes}")
    total = 0
    for piece in response.iter_bytes():
        total += len(piece)
        if total > max_bytes:
            raise TooLarge(f"{what} sent more than {max_bytes} bytes")
        yield piece


def request(method: str, url: str, *, what: str, timeout_s: float, max_bytes: int, client_=None,
            **kwargs) -> Answer:
    """One call, whole body read under the bounds; ``OutboundTimeout`` past the deadline."""
    httpx = http()[0]

    own = client_ is None
    c = client_ or client(timeout_s)
    try:
        with c.stream(method, url, **kwargs) as response:
            content = b"".join(body_pieces(response, max_bytes, what))
            return Answer(response.status_code, dict(response.headers), content)
    except httpx.TimeoutException:
        raise OutboundTimeout(f"{what} did not answer in time") from None
    finally:
        if own:
            c.close()


#: The slowest transfer a file download waits for (bytes a second), on top of ``TRANSFER_GRACE_S``.
MIN_TRANSFER_RATE = 50_000
TRANSFER_GRACE_S = 300.0


def transfer_timeout_s(size: int) -> float:
    """The deadline for downloading ``size`` bytes: a grace period plus the time at ``MIN_TRANSFER_RATE``."""
    return TRANSFER_GRACE_S + size / MIN_TRANSFER_RATE


def _content_range_start(response) -> int | None:
    value = response.headers.get("content-range", "")
    try:
        return int(value.split()[1].split("-")[0]) if value.startswith("bytes ") else None
    except (IndexError, ValueError):
        return None


def download(url: str, dest: Path, *, what: str, timeout_s: float, size: int | None, max_bytes: int,
             headers: dict | None = None, resume: bool = False) -> None:
    """Fetch ``url`` into ``dest`` (temp file + rename), stopping at ``size`` (when the index knows it).

    ``timeout_s`` bounds the whole transfer. With ``resume``, a connection that drops part way is asked once
    more for the rest (an HTTP Range request), within the same deadline and byte cap."""
    httpx = http()[0]

    cap = size if size is not None else max_bytes
    tmp = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with client(timeout_s, follow_redirects=True) as c, open(tmp, "wb") as fh:
            for attempt in range(2 if resume else 1):
                ask = dict(headers or {})
                if written:
                    ask["Range"] = f"bytes={written}-"
                try:
                    with c.stream("GET", url, headers=ask) as response:
                        if written and response.status_code == 200:  # the server ignored the range: start over
                            fh.seek(0)
                            fh.truncate()
                            written = 0
                        elif written and (response.status_code != 206 or _content_range_start(response) != written):
                            raise HTTPStatus(f"{what}: the server answered HTTP {response.status_code} to a resume",
                                             status=response.status_code)
                        elif not written and response.status_code != 200:
                            raise HTTPStatus(f"{what}: the server answered HTTP {response.status_code}",
                                             status=response.status_code)
                        announced = _announced(response)
                        if size is not None and announced is not None and announced != size - written:
                            raise TooLarge(f"{what} is announced as {written + announced} bytes; the index says {size}")
                        for piece in body_pieces(response, cap - written, what):
                            fh.write(piece)
                            written += len(piece)
                    break
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    if attempt or not resume or not written:
                        raise
        if size is not None and written != size:
            raise EngineError(f"{what} is {written} bytes; the index says {size}")
        tmp.replace(dest)
    except httpx.TimeoutException:
        raise OutboundTimeout(f"{what} did not arrive within {timeout_s:.0f} s") from None
    finally:
        tmp.unlink(missing_ok=True)


def probe(url: str, *, what: str, timeout_s: float, headers: dict | None = None) -> Answer:
    """HEAD ``url`` (redirects followed) within ``timeout_s``: its status and headers (no body)."""
    httpx = http()[0]

    try:
        with client(timeout_s, follow_redirects=True) as c:
            response = c.head(url, headers=headers or {})
    except httpx.TimeoutException:
        raise OutboundTimeout(f"{what} did not answer within {timeout_s:.0f} s") from None
    return Answer(response.status_code, dict(response.headers), b"")


def announced_size(answer: Answer) -> int | None:
    """The size a HEAD announces: the hub's ``X-Linked-Size`` on an LFS redirect, else ``Content-Length``."""
    for key in ("x-linked-size", "content-length"):
        try:
            return int(answer.headers[key])
        except (KeyError, ValueError):
            continue
    return None


def head(url: str, *, what: str, timeout_s: float) -> tuple[int, int | None]:
    """HEAD ``url`` (redirects followed): its status and the size it announces (None when it does not say)."""
    answer = probe(url, what=what, timeout_s=timeout_s)
    return answer.status_code, announced_size(answer)


def decode(data: bytes, what: str, max_seconds: float, internal: str | None = None):
    """Audio from another server, under the same decode budget as uploads (a bomb, like garbage, is the other
    server's fault: ``UpstreamError``, whose ``internal`` names the server for the audit log)."""
    from demod_voice import audio as audio_mod

    try:
        return audio_mod.decode_upload(data, what, max_seconds, "the outbound decode budget")
    except LimitError:
        raise UpstreamError(f"{what} is longer than {max_seconds:g} s; refused", internal=internal) from None
    except Exception as exc:  # any undecodable answer is the other server's fault
        raise UpstreamError(f"{what} is not audio we can decode", internal=f"{internal or what}: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
