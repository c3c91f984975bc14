"""Listen for Wyoming clients on ``tcp://HOST:PORT`` or ``unix://PATH``, optionally advertised over mDNS.

``WyomingServer(service, cfg)`` shares the HTTP service object (engines,
router, cache, profiles). ``start()`` binds, ``stop()`` stops accepting, lets
connections in flight finish for a grace period and cancels the rest.

The server accepts connections itself rather than through
``asyncio.start_server`` so that it stays bounded with no authentication in
front of it: past ``wyoming.max_connections`` a connection is sent an
``error`` event and closed at once, and when ``accept()`` fails for lack of
descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the loop backs off
and says so once, instead of logging every retry.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from demod_voice.errors import NotAvailableError, UsageError
from demod_voice.wyoming.limits import AudioBudget
from demod_voice.wyoming.unix_socket import bind_unix

_LOGGER = logging.getLogger(__name__)

#: accept() errors that mean "out of resources for now": wait and retry (longest wait: _BACKOFF_MAX s).
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_BACKOFF_MIN, _BACKOFF_MAX = 0.05, 1.0


def _busy(text: str) -> bytes:
    """A Wyoming ``error`` event (code ``busy``) as one line: what happened and what to do."""
    import json

    return (json.dumps({"type": "error", "data": {"text": text, "code": "busy"}}) + "\n").encode()


#: Over wyoming.max_connections (this front end's own bound).
_BUSY = _busy("the server has too many Wyoming connections (wyoming.max_connections); reconnect in a few seconds, "
              "or ask its operator to raise wyoming.max_connections")
#: Over the bound on all open connections, HTTP and Wyoming together (below the open-file limit).
_BUSY_GATE = _busy("the server has too many open connections (HTTP and Wyoming together, below its open-file "
                   "limit); reconnect in a few seconds, or ask its operator to raise the open-file limit "
                   "(ulimit -n) or lower server.max_connections")


@dataclass(frozen=True)
class Address:
    scheme: str  # "tcp" | "unix"
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}" if self.scheme == "tcp" else f"unix://{self.path}"


def parse_uri(uri: str) -> Address:
    """``tcp://HOST:PORT`` or ``unix://PATH`` with clear errors for everything else."""
    hint = "use tcp://HOST:PORT (e.g. tcp://127.0.0.1:10200) or unix:///run/demod-voice/wyoming.sock"
    parsed = urlparse(uri or "")
    if parsed.scheme == "unix":
        path = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
        if not path:
            raise UsageError(f"Wyoming address {uri!r} names no socket path", hint=hint)
        return Address("unix", path=path)
    if parsed.scheme == "tcp":
        try:
            port = parsed.port
        except ValueError:
            raise UsageError(f"Wyoming address {uri!r} has a bad port", hint=hint) from None
        if not parsed.hostname or port is None:
            raise UsageError(f"Wyoming address {uri!r} needs a host and a port", hint=hint)
        return Address("tcp", host=parsed.hostname, port=port)
    raise UsageError(f"Wyoming address {uri!r} is not tcp:// or unix://", hint=hint)


class WyomingServer:
    def __init__(self, service, cfg, uri: str | None = None):
        self.service = service
        self.cfg = cfg
        self.address = parse_uri(uri or cfg.get("wyoming.uri"))
        self.stt = service.stt
        self.max_connections = cfg.get("wyoming.max_connections")
        self.budget = AudioBudget(cfg.get("wyoming.max_audio_bytes"))
        """Received audio of all connections together (wyoming.max_audio_bytes)."""
        self._listeners: list[socket.socket] = []
        self._accepting: list[asyncio.Task] = []
        self._tasks: set[asyncio.Task] = set()
        self._connections: dict[asyncio.Task, object] = {}
        """Each connection task's ``Connection``, so a shutdown can tell idle ones from requests in flight."""
        self._refusing = False
        self._zeroconf = None

    async def start(self) -> None:
        if self.address.scheme == "unix":
            path = Path(self.address.path)
            _clear_stale_socket(path)
            self._listeners = [bind_unix(path, self.cfg.get("wyoming.socket_mode"), self.cfg.get("wyoming.socket_group"))]
        else:
            try:
                self._listeners = await asyncio.to_thread(_tcp_listeners, self.address.host, self.address.port)
            except OSError as exc:
                raise UsageError(f"cannot listen on {self.address}: {exc.strerror or exc}",
                                 hint="choose another port or stop what uses it") from None
        for sock in self._listeners:
            sock.listen(128)
            sock.setblocking(False)
            self._accepting.append(asyncio.create_task(self._accept_loop(sock)))
        _LOGGER.info("Wyoming listening on %s", self.address)
        if self.cfg.get("wyoming.zeroconf"):
            await self._advertise()

    @property
    def port(self) -> int:
        """The bound TCP port (useful with port 0)."""
        assert self._listeners
        return self._listeners[0].getsockname()[1]

    async def _accept_loop(self, listener: socket.socket) -> None:
        """Accept until cancelled; back off (logged once) while the process is out of descriptors."""
        loop = asyncio.get_running_loop()
        delay, failing = _BACKOFF_MIN, False
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if listener.fileno() < 0:
                    return  # closed by stop()
                if isinstance(exc, ConnectionError):  # a client that reset before it was taken
                    continue
                if not failing:  # out of descriptors or memory (_RESOURCE_ERRNOS), or worse: wait, say it once
                    _LOGGER.warning("Wyoming cannot accept connections: %s; retrying quietly until it can",
                                    exc.strerror)
                    failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            if failing:
                _LOGGER.warning("Wyoming accepts connections again")
                delay, failing = _BACKOFF_MIN, False
            gate = getattr(self.service, "gate", None)  # HTTP and Wyoming together, below the descriptor limit
            token = gate.enter(idle=False) if gate is not None else None
            if len(self._tasks) >= self.max_connections or (gate is not None and token is None):
                if gate is not None:
                    gate.leave(token)
                self._refuse(conn, own=len(self._tasks) >= self.max_connections)
                continue
            if self._refusing:
                _LOGGER.warning("Wyoming serves new connections again")
                self._refusing = False
            task = asyncio.create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if gate is not None:
                task.add_done_callback(lambda _t, gate=gate, token=token: gate.leave(token))

    def _refuse(self, conn: socket.socket, own: bool = True) -> None:
        """Past a bound: the ``busy`` error event if the socket takes it at once, then close. ``own``: past
        wyoming.max_connections; else past the server's bound on all open connections (``connections.Gate``)."""
        if not self._refusing:
            if own:
                _LOGGER.warning("Wyoming has %d connections (wyoming.max_connections); refusing new ones",
                                len(self._tasks))
            else:
                _LOGGER.warning("the server's open connections (HTTP and Wyoming) are at their limit; Wyoming is "
                                "refusing new ones")
            self._refusing = True
        try:
            conn.setblocking(False)
            conn.send(_BUSY if own else _BUSY_GATE)
        except OSError:
            pass
        conn.close()

    async def _serve(self, conn: socket.socket) -> None:
        from demod_voice.wyoming.handler import MAX_LINE, Connection

        try:
            if conn.family == socket.AF_UNIX:
                reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_LINE)
            else:
                reader, writer = await asyncio.open_connection(sock=conn, limit=MAX_LINE)
        except OSError as exc:
            conn.close()
            _LOGGER.info("Wyoming connection lost before it started: %s", exc)
            return
        connection = Connection(reader, writer, self.service, self.stt, self.cfg, self.budget)
        task = asyncio.current_task()
        self._connections[task] = connection
        try:
            await connection.run()
        except Exception:  # a bug: one connection ends, the server and its log stay usable
            _LOGGER.exception("Wyoming connection failed")
            writer.close()
        finally:
            self._connections.pop(task, None)

    async def _advertise(self) -> None:
        if self.address.scheme != "tcp":
            raise UsageError("--zeroconf needs a tcp:// Wyoming address", hint="mDNS cannot advertise a unix socket")
        try:
            from zeroconf import IPVersion
            from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf
        except ImportError:
            raise NotAvailableError("--zeroconf needs the 'zeroconf' package, which is not installed",
                                    hint="it comes with the 'server' extra: 'make install EXTRAS=server' in a "
                                         "checkout (or drop --zeroconf and add the integration by host and port)"
                                    ) from None
        host = self.address.host
        if host in ("0.0.0.0", "::", ""):
            host = _outbound_address()
        name = self.cfg.get("wyoming.zeroconf_name") or f"demod-voice-{socket.gethostname()}"
        self._service_info = AsyncServiceInfo("_wyoming._tcp.local.", f"{name}._wyoming._tcp.local.",
                                              addresses=[socket.inet_aton(host)], port=self.port,
                                              server=f"{socket.gethostname()}.local.")
        self._zeroconf = AsyncZeroconf(interfaces=[host], ip_version=IPVersion.V4Only)
        await self._zeroconf.async_register_service(self._service_info)
        _LOGGER.info("advertised %s over mDNS on %s", name, host)

    async def stop(self, grace: float = 10.0) -> None:
        if self._zeroconf is not None:
            await self._zeroconf.async_unregister_service(self._service_info)
            await self._zeroconf.async_close()
            self._zeroconf = None
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self._accepting = []
        for sock in self._listeners:
            sock.close()
        self._listeners = []
        if self._tasks:
            await self._drain(grace)
        if self.address.scheme == "unix":
            Path(self.address.path).unlink(missing_ok=True)


    async def _drain(self, grace: float) -> None:
        """Close idle connections at once; wait up to ``grace`` for requests in flight, closing each
        connection as soon as its request is answered; then cancel what is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        closing: set[asyncio.Task] = set()
        while self._tasks:
            for task in list(self._tasks - closing):
                connection = self._connections.get(task)
                if connection is None or connection.idle:
                    task.cancel()  # once: its own cleanup (closing the socket) must be left to run
                    closing.add(task)
            if loop.time() >= deadline:
                break
            await asyncio.wait(set(self._tasks), timeout=0.1)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _tcp_listeners(host: str, port: int) -> list[socket.socket]:
    """Bound (not yet listening) sockets for every address ``host`` resolves to, as asyncio.start_server binds."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # port 0: the first address's free port for all of them
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket left by an earlier run; refuse to replace anything that is not a socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISSOCK(mode):
        raise UsageError(f"Wyoming socket path {path} exists and is not a socket",
                         hint="choose another path; it is never overwritten")
    path.unlink()


def _outbound_address() -> str:
    """The address other hosts reach this one at (the source of a route to the mDNS group)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("224.0.0.251", 5353))
            return sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"


async def serve_forever(service, cfg, grace: float = 30.0, ready=None) -> None:
    """Wyoming only (``serve --no-http``): run until SIGTERM (exit 0) or SIGINT (KeyboardInterrupt), then drain."""
    import signal

    server = WyomingServer(service, cfg)
    await server.start()
    if ready is not None:
        ready(server)
    received: list[int] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda sig=sig: (received.append(sig), stop.set()))
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop(grace)
    if signal.SIGINT in received:
        raise KeyboardInterrupt
