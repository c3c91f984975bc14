"""Listen for Wyoming clients on ``tcp://HOST:PORT`` or ``unix://PATH``, optionally advertised over mDNS.

``WyomingServer(service, cfg)`` shares the HTTP service object (engines,
router, cache, profiles). ``start()`` binds, ``stop()`` stops accepting, lets
connections in flight finish for a grace period and cancels the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from demod_voice.errors import NotAvailableError, UsageError

_LOGGER = logging.getLogger(__name__)


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
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._zeroconf = None

    async def start(self) -> None:
        from demod_voice.wyoming.handler import MAX_LINE

        if self.address.scheme == "unix":
            path = Path(self.address.path)
            _clear_stale_socket(path)
            self._server = await asyncio.start_unix_server(self._accept, path=str(path), limit=MAX_LINE)
        else:
            try:
                self._server = await asyncio.start_server(self._accept, self.address.host, self.address.port,
                                                          limit=MAX_LINE)
            except OSError as exc:
                raise UsageError(f"cannot listen on {self.address}: {exc.strerror}",
                                 hint="choose another port or stop what uses it") from None
        _LOGGER.info("Wyoming listening on %s", self.address)
        if self.cfg.get("wyoming.zeroconf"):
            await self._advertise()

    @property
    def port(self) -> int:
        """The bound TCP port (useful with port 0)."""
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from demod_voice.wyoming.handler import Connection

        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await Connection(reader, writer, self.service, self.stt, self.cfg).run()
        finally:
            self._tasks.discard(task)

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
        if self._server is not None:
            self._server.close()
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self.address.scheme == "unix":
            Path(self.address.path).unlink(missing_ok=True)


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
