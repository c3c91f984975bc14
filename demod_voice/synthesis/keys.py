"""One audio-cache key for every front end: the same request is one cache entry, whoever asked.

The CLI, a batch job and the server each used to build their own key (the CLI from the command name and
the options' repr, the server from the router's raw request), so the same sentence in the same voice was
cached once per front end. Here the key is made in one place from what the engine's plugin *validated*:
its plan (config defaults filled in, the voice resolved, the speaker turned into an index; files stand
for their contents, never their paths: ``paths.file_identity``). How a front end happened to spell the
request (a voice name or its path, a speaker as text or a number, an option left out or given its default)
therefore no longer matters.

What the key holds beyond that: the text (normalised by ``cache.make_key``), what the plan does not carry
(``continued``, ``split_sentences``), the chained RVC conversion, the output format and the encoder that
wrote it, a resampling rate, and a *scope*: the user whose entry it is (the server keeps users apart so a
hit tells nobody what another user asked for; the CLI and batch are the local user).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from demod_voice.paths import DEFAULT_USER

_FROM_REQUEST = object()

#: Bumped when what goes into a key changes, so older entries are never mistaken for new ones.
VERSION = 1

#: How the bytes were written: a whole file (``audio.encode``), the server's whole answer (PyAV for the
#: lossy codecs), or a stream (headers written before the length is known). Equal bytes, equal name.
FILE, HTTP_WHOLE, STREAM = "file", "http", "stream"


def encoder_for(fmt: str, how: str) -> str:
    """The encoder that wrote ``fmt`` bytes this way: front ends that write the same bytes share entries."""
    if how == STREAM:
        return STREAM
    if how == HTTP_WHOLE and fmt != "aac":
        from demod_voice import streaming

        if fmt in streaming.CODECS:  # the server's whole mp3/opus/ogg answer comes from PyAV, a file from libsndfile
            return "pyav"
    return FILE


def canonical(value: Any) -> Any:
    """A plan as plain JSON data: dataclasses as dicts, files as their contents' identity, the rest as is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        from demod_voice.paths import file_identity

        return file_identity(value) if value.is_file() else str(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def plan_parts(adapter, plan) -> Any:
    """What a plugin's plan contributes: its own ``cache_identity(plan)`` where the plan alone does not
    name the contents it depends on (a model folder, decoded reference audio), else the plan, canonical."""
    own = getattr(adapter, "cache_identity", None)
    return own(plan) if own is not None else canonical(plan)


def rvc_parts(rvc, cfg) -> Any:
    """The chained conversion: the voice (its file's contents when a path) and every option, validated."""
    if rvc is None:
        return None
    from demod_voice.synthesis import registry

    converter = registry.converter()
    return {"voice": converter.identity(rvc, cfg), "index": rvc.index, "options": canonical(converter.options(rvc, cfg))}


def audio_key(engine: str, request, cfg, *, fmt: str, plan: Any = None, rvc: Any = _FROM_REQUEST,
              scope: str = DEFAULT_USER, sample_rate: int | None = None, how: str = FILE) -> str:
    """The one cache key of ``request`` spoken by ``engine`` and written as ``fmt``.

    ``plan``: what ``registry.get(engine).options(request, cfg)`` returned, when the caller has it (it is
    built otherwise). ``rvc``: the conversion chained after the speech (default: ``request.rvc``).
    ``scope``: whose entry (the server's user; the local user elsewhere). ``how``: ``FILE``,
    ``HTTP_WHOLE`` or ``STREAM`` (see ``encoder_for``).
    """
    from demod_voice.cache import make_key
    from demod_voice.synthesis import registry

    adapter = registry.get(engine, cfg)
    plan = plan if plan is not None else adapter.options(request, cfg)
    rvc = request.rvc if rvc is _FROM_REQUEST else rvc
    parts = {"v": VERSION, "engine": engine, "plan": plan_parts(adapter, plan), "continued": bool(request.continued),
             "split_sentences": bool(request.split_sentences), "rvc": rvc_parts(rvc, cfg), "fmt": fmt,
             "encoder": encoder_for(fmt, how), "scope": scope}
    if sample_rate:
        parts["sample_rate"] = int(sample_rate)
    return make_key(request.text, **parts)


def entry_meta(engine: str, fmt: str, sample_rate: int, duration: float) -> dict:
    """What an entry carries whoever stored it: the headers a server hit answers (``X-Engine``;
    ``X-Sample-Rate`` for raw ``pcm``), and the length and rate a batch hit reports without decoding."""
    headers = {"X-Engine": engine}
    if fmt == "pcm":
        headers["X-Sample-Rate"] = str(sample_rate)
    return {"headers": headers, "sample_rate": int(sample_rate), "duration": round(float(duration), 6)}


def tag_for(engine: str, plan: Any) -> str:
    """The tag an entry is stored under (``cache.AudioCache.invalidate``): ``engine/voice`` for a voice file,
    as the server tags its catalog voices, else the engine. (A saved voice's entries need no tag to go
    stale: their key holds the reference's contents.)"""
    model = getattr(plan, "model_path", None)
    return f"{engine}/{model.stem}" if isinstance(model, Path) else engine


def route_key(route, cfg, *, fmt: str, rvc: Any = None, scope: str = DEFAULT_USER, sample_rate: int | None = None,
              how: str = HTTP_WHOLE) -> str:
    """The server's key: the key of its first choice's request and plan (only a first choice's answer is
    ever stored), so an HTTP request hits what the CLI or a batch job stored, and the other way round.

    A provider that hands over no request and plan (a plugin written before them) is keyed from the route
    as it was before; such entries are the server's own.
    """
    first = route.candidates[0]
    if first.request is not None and first.plan is not None:
        return audio_key(first.engine, first.request, cfg, fmt=fmt, plan=first.plan, rvc=rvc, scope=scope,
                         sample_rate=sample_rate, how=how)
    from demod_voice.cache import make_key

    rate = {"sample_rate": sample_rate} if sample_rate else {}
    return make_key(route.request.text, fmt=fmt, stream=how == STREAM, user=scope, **rate, **route.cache_parts())
