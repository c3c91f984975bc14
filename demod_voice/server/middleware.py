"""Request guards as pure ASGI middleware: they run before FastAPI reads or parses a byte of the body.

In order, outermost first (``install`` adds them):

* ``HostGuard`` -- the ``Host`` header must be an IP literal, a localhost name, the bound address or a
  name in ``server.allowed_hosts``. DNS rebinding always arrives with the attacker's domain name in
  ``Host``, so it is refused here.
* ``OriginGuard`` -- a state-changing request (POST, PUT, PATCH, DELETE) from a browser page of another
  origin is refused (403) unless that origin is in ``server.allowed_origins``. The bundled page is
  same-origin and passes. Cross-origin reads get no CORS answer, so the browser hides them.
  CORS itself is Starlette's ``CORSMiddleware``, installed only for the allowed origins.
* ``AuthGate`` -- resolves the API key to a user from the headers alone and answers 401 before the
  body is touched; the user is put in ``scope["demod.user"]`` for the routes.
* ``BodyLimit`` -- counts body bytes as they arrive, chunked or not, and answers 413 at the byte that
  passes ``server.max_body_bytes`` (or at once, from ``Content-Length``); a client that stalls
  mid-body for ``server.body_timeout_s`` gets 408. Either way the connection is closed.
* ``Metrics`` (innermost) -- counts answered requests for ``/metrics``.

Every refusal is the service's JSON error shape (``schemas.error_body``, OpenAI's), with a ``code``
naming the guard: ``invalid_host``, ``cross_origin_refused``, ``invalid_api_key``, ``request_too_large``,
``request_timeout``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from urllib.parse import urlsplit

from demod_voice.server.schemas import error_body
from demod_voice.server.security import KeyRing, key_from_headers

#: Paths anyone may fetch without a key: the page, health, metrics and the API docs.
PUBLIC_PATHS = ("/", "/favicon.ico", "/health", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
PUBLIC_PREFIXES = ("/static-offline-docs/",)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")

USER_KEY = "demod.user"


async def send_error(send, status: int, message: str, code: str | None, hint: str | None = None,
                     headers: dict | None = None) -> None:
    """Answer with the service's JSON error (``code`` as OpenAI's ``code``) and close the connection."""
    body = json.dumps(error_body(status, message, code, hint)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _split_host(value: str) -> str:
    """``example.org:5002`` -> ``example.org``; ``[::1]:5002`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def default_hosts(bound: str) -> set[str]:
    """Localhost names, the bound address and, when bound to every interface, this machine's names."""
    hosts = set(LOCAL_NAMES) | {_split_host(bound)}
    if bound in ("0.0.0.0", "::", ""):
        hosts |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return hosts


class HostGuard:
    def __init__(self, app, allowed: list[str], bound: str):
        self.app = app
        self.any = "*" in allowed
        self.allowed = {_split_host(h) for h in allowed if h != "*"} | default_hosts(bound)

    def allows(self, value: str | None) -> bool:
        if value is None or self.any:  # no Host at all is not a browser (HTTP/1.0 tools)
            return True
        name = _split_host(value).rstrip(".")
        return _is_ip(name) or name in self.allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and not self.allows(header(scope, b"host")):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            return await send_error(send, 400, f"unknown Host {header(scope, b'host')!r}", "invalid_host",
                                    "add the name clients use to server.allowed_hosts")
        return await self.app(scope, receive, send)


def same_origin(origin: str, host: str | None, scheme: str) -> bool:
    """True when ``origin`` is this server as the browser reached it (the bundled page)."""
    if not host:
        return False
    default = {"http": 80, "https": 443}
    try:
        page, here = urlsplit(origin), urlsplit("//" + host)
        if page.hostname is None or page.hostname != here.hostname:
            return False
        if here.port is None:  # behind a TLS proxy: Host has no port and the scheme seen here is not the page's
            return page.scheme in default
        return page.scheme == scheme and (page.port or default.get(page.scheme)) == here.port
    except ValueError:
        return False


class OriginGuard:
    def __init__(self, app, allowed_origins: list[str]):
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed_origins}

    def refuses(self, scope) -> str | None:
        """Why a request must be refused, or None."""
        if scope["method"] in SAFE_METHODS:
            return None
        origin = header(scope, b"origin")
        if origin is not None:
            if origin.lower() in self.allowed or same_origin(origin, header(scope, b"host"), scope.get("scheme", "http")):
                return None
            return f"requests from the web origin {origin!r} are not allowed"
        site = (header(scope, b"sec-fetch-site") or "").lower()
        if site in ("cross-site", "same-site"):
            return f"a {site} browser request is not allowed"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            reason = self.refuses(scope)
            if reason:
                return await send_error(send, 403, reason, "cross_origin_refused",
                                        "add the page's origin to server.allowed_origins")
        return await self.app(scope, receive, send)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthGate:
    def __init__(self, app, keys: KeyRing):
        self.app = app
        self.keys = keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or is_public(scope["path"]):
            return await self.app(scope, receive, send)
        key = key_from_headers({"authorization": header(scope, b"authorization") or "",
                                "x-api-key": header(scope, b"x-api-key")})
        user = await asyncio.to_thread(self.keys.user_for, key) if key else self.keys.user_for(None)
        if user is None:
            return await send_error(send, 401, "missing or invalid API key", "invalid_api_key",
                                    "send 'Authorization: Bearer KEY' with a key from server.api_keys",
                                    {"WWW-Authenticate": "Bearer"})
        scope[USER_KEY] = user
        return await self.app(scope, receive, send)


class _Refused(Exception):
    """Raised into the app's body reading; the middleware answers instead."""


class BodyLimit:
    def __init__(self, app, max_bytes: int, timeout_s: float):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def too_large(self, size: int) -> tuple[int, str, str, str]:
        return (413, f"request body is larger than {self.max_bytes} bytes" + (f" ({size} declared)" if size else ""),
                "request_too_large", "server.max_body_bytes / server.max_upload_mb")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            return await send_error(send, *self.too_large(int(declared)))
        state = {"received": 0, "done": False, "refused": None, "started": False}

        async def limited_receive():
            if state["refused"]:
                raise _Refused()
            if state["done"]:  # body complete: the app waits for a disconnect, which may take long
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                state["refused"] = (408, f"no request body data for {self.timeout_s:g} s", "request_timeout",
                                    "server.body_timeout_s")
                raise _Refused() from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["done"] = not message.get("more_body", False)
                if state["received"] > self.max_bytes:
                    state["refused"] = self.too_large(0)
                    raise _Refused()
            else:
                state["done"] = True
            return message

        async def guarded_send(message):
            if state["refused"] and not state["started"]:
                return  # the app's own answer to the aborted body is replaced by ours
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _Refused:
            pass
        except Exception:
            if not state["refused"]:
                raise
        if state["refused"] and not state["started"]:
            await send_error(send, *state["refused"])


class Metrics:
    """Counts every answered request by route, method and status (for ``/metrics``).

    Pure ASGI on purpose: Starlette's ``BaseHTTPMiddleware`` wraps ``receive`` in a task group, which
    hides a client's disconnect from ``Request.is_disconnected`` -- and the service uses that to cancel
    work nobody waits for any more.
    """

    def __init__(self, app, counter):
        self.app = app
        self.counter = counter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def observed_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            self.counter.observe(getattr(route, "path", "other"), scope["method"], status["code"],
                                 time.perf_counter() - started)


def install(app, cfg, keys: KeyRing, counter=None) -> None:
    """Add the guards (and the request counter) to ``app`` (Starlette wraps the last added outermost)."""
    if counter is not None:
        app.add_middleware(Metrics, counter=counter)
    max_body = cfg.get("server.max_body_bytes") or int(cfg.get("server.max_upload_mb") * 1024 * 1024) + 64 * 1024
    app.add_middleware(BodyLimit, max_bytes=max_body, timeout_s=cfg.get("server.body_timeout_s"))
    app.add_middleware(AuthGate, keys=keys)
    origins = list(cfg.get("server.allowed_origins") or [])
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["X-Engine", "X-Cache", "X-Fallback", "X-Voice", "X-Ignored",
                                           "X-Sample-Rate"])
    app.add_middleware(OriginGuard, allowed_origins=origins)
    app.add_middleware(HostGuard, allowed=list(cfg.get("server.allowed_hosts") or []), bound=cfg.get("server.host"))
