"""The one place Wyoming reaches into the HTTP service to synthesise (router, fallback, cache, profiles).

``Service.speak`` with a streamed WAV answers either a live stream (a WAV
header for a stream of unknown length, then 16-bit PCM sentence by sentence)
or, on a cache hit, the same bytes whole; both become (rate, PCM pieces).
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

from demod_voice.errors import EngineError
from demod_voice.server.router import TTSRequest

WAV_HEADER = 44


def _rate(header: bytes) -> int:
    if len(header) < WAV_HEADER or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise EngineError("the service answered audio without a WAV header")
    return struct.unpack_from("<I", header, 24)[0]


async def speak_pcm(service, req: TTSRequest) -> tuple[int, AsyncIterator[bytes]]:
    """(sample rate, async iterator of 16-bit mono PCM) for ``req``; raises DemodError before any audio."""
    result = await service.speak(req, "wav", stream=True)
    if result.body is not None:
        body = result.body

        async def whole() -> AsyncIterator[bytes]:
            yield body[WAV_HEADER:]

        return _rate(body), whole()
    stream = result.stream
    first = b""
    async for piece in stream:
        first += piece
        if len(first) >= WAV_HEADER:
            break
    try:
        rate = _rate(first)
    except EngineError:
        await stream.aclose()
        raise

    async def rest() -> AsyncIterator[bytes]:
        try:
            if len(first) > WAV_HEADER:
                yield first[WAV_HEADER:]
            async for piece in stream:
                yield piece
        finally:
            await stream.aclose()

    return rate, rest()
