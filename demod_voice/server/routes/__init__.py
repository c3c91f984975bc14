"""The HTTP surfaces, one ``APIRouter`` each: ``openai``, ``native``, ``voices``, ``ops``.

Routes parse, authenticate and call ``Service`` (the only thing they call); shared dependencies live here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Request, UploadFile

from demod_voice.errors import InputError
from demod_voice.server.middleware import USER_KEY
from demod_voice.server.service import HTTPProblem, Result, Service


def service(request: Request) -> Service:
    return request.app.state.service


def current_user(request: Request) -> str:
    """The user the auth middleware found for the request's API key (the default user while auth is off)."""
    user = request.scope.get(USER_KEY)
    if user is None:  # only public paths skip the gate, and they do not ask for a user
        raise HTTPProblem(401, "missing or invalid API key", hint="send 'Authorization: Bearer KEY'")
    return user


def is_admin(request: Request, user: str) -> bool:
    return request.app.state.keys.is_admin(user)


@asynccontextmanager
async def client_watch(request: Request) -> AsyncIterator[Callable[[], Awaitable[bool]]]:
    """``client_gone()`` for a request whose body has been read: true once its client has disconnected.

    Starlette's ``Request.is_disconnected`` only peeks at the ASGI channel without waiting, and behind a
    ``BaseHTTPMiddleware`` that peek never reaches the server, so a client that left went unseen. Here
    one task keeps waiting on ``receive()`` (after the body, the only message left is ``http.disconnect``)
    for as long as the request is being prepared; it is stopped before a response is sent, so a
    ``StreamingResponse`` is again the only one listening.
    """

    async def until_disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(until_disconnect())

    async def client_gone() -> bool:
        # a receive that failed (no ASGI channel left) says nothing about the client
        return watcher.done() and not watcher.cancelled() and watcher.exception() is None

    try:
        yield client_gone
    finally:
        watcher.cancel()


def respond(result: Result):
    from fastapi.responses import Response, StreamingResponse

    if result.stream is not None:
        return StreamingResponse(result.stream, media_type=result.media_type, headers=result.headers)
    return Response(result.body, media_type=result.media_type, headers=result.headers)


async def read_upload(request: Request, file: UploadFile) -> bytes:
    limit = request.app.state.max_upload
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPProblem(413, f"upload {file.filename!r} is larger than {limit} bytes", hint="server.max_upload_mb",
                          param="file", code="request_too_large")
    if not data:
        raise InputError(f"upload {file.filename!r} is empty")
    return data
