"""The logic behind the HTTP routes: plan, cache, run on the right worker, encode, stream.

Routes stay thin; everything that is not HTTP lives here or below (router,
cache, voices). Engines run in worker threads: one single-thread queue per
GPU device (requests on one device never interleave) and a bounded pool for
CPU engines, so the event loop -- and ``/health`` -- stays responsive while
synthesis is under way.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from demod_voice import audio as audio_mod
from demod_voice import captions, streaming
from demod_voice.audio import Audio
from demod_voice.cache import AudioCache, Claim
from demod_voice.errors import DemodError, HTTPProblem, InputError  # noqa: F401  (HTTPProblem re-exported for routes)
from demod_voice.server.router import TIERS, Candidate, Fallback, Route, Router, TTSRequest
from demod_voice.server.schemas import error_body, status_for
from demod_voice.server.voice_identity import identity_headers
from demod_voice.stt import SpeechToText
from demod_voice.synthesis import chain, keys

_LOGGER = logging.getLogger(__name__)

#: Formats written to the client chunk by chunk as sentences are synthesised. Not Ogg Vorbis, and not
#: FLAC: a streamed FLAC cannot state its length or MD5 in STREAMINFO, and libsndfile then refuses to read
#: it whole; a FLAC answer is encoded whole (lengths, totals and MD5 filled in), then sent.
STREAMABLE = tuple(f for f in streaming.STREAMABLE if f != "flac")


class Workers:
    """One single-thread executor per GPU device plus a bounded CPU pool."""

    def __init__(self, cpu_workers: int):
        self.cpu = concurrent.futures.ThreadPoolExecutor(max_workers=cpu_workers, thread_name_prefix="cpu-engine")
        self.devices: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def executor_for(self, device: str) -> concurrent.futures.ThreadPoolExecutor:
        if device == "cpu":
            return self.cpu
        if device == "net":  # remote engines, GPT-SoVITS: waiting on another server never holds a CPU worker
            from demod_voice import outbound

            return outbound.pool()
        device = "cuda:0" if device == "gpu" else device
        with self._lock:
            if device not in self.devices:
                self.devices[device] = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"queue-{device}")
            return self.devices[device]

    def shutdown(self) -> None:
        """Drop queued jobs and return at once: uvicorn's graceful timeout already bounded the wait for
        requests in flight, and a running engine job cannot be interrupted (``serve`` exits past it)."""
        for executor in [self.cpu, *self.devices.values()]:
            executor.shutdown(wait=False, cancel_futures=True)


class ClientGone(HTTPProblem):
    """The HTTP client disconnected before its whole-body answer was ready (nginx's 499; nobody reads it)."""

    def __init__(self, message: str = "the client disconnected"):
        super().__init__(499, message)


#: How often a waiting whole-body request checks whether its client is still there.
_POLL_S = 0.25


async def _watching(awaitable, timeout: float, client_gone, cancel: threading.Event | None = None):
    """``asyncio.wait_for`` that also gives up (and sets ``cancel``) when the client has disconnected."""
    if client_gone is None:
        return await asyncio.wait_for(awaitable, timeout)
    task = asyncio.ensure_future(awaitable)
    deadline = time.monotonic() + timeout
    try:
        while True:
            # asked before every wait, not only after one times out: chunks that come faster than _POLL_S
            # would otherwise hide a client that left, and the engine would run to the end for nobody
            if await client_gone():
                if cancel is not None:
                    cancel.set()
                raise ClientGone()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait({task}, timeout=min(_POLL_S, remaining))
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()



def _too_slow(cfg) -> str:
    return (f"no whole answer within {cfg.get('server.request_timeout_s'):g} s (server.request_timeout_s bounds "
            "the whole answer: waiting in the queue, synthesis and streaming)")


def _cached_headers(headers: dict) -> dict:
    """The headers a cache hit repeats (the others describe this request, not the audio)."""
    return {k: v for k, v in headers.items() if k in ("X-Engine", "X-Fallback", "X-Sample-Rate", "X-Voice")}


@dataclass
class Result:
    """What a synthesis request answers with: bytes (whole) or an async byte stream."""

    media_type: str
    headers: dict
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    send_timeout_s: float | None = None
    """A stream whose client does not take the next piece within this many seconds is ended."""


def encode_whole(audio: Audio, fmt: str) -> bytes:
    """A whole response: PyAV codecs with finished headers, the rest as ``audio.encode``."""
    if fmt in streaming.CODECS:
        return streaming.encode_whole(audio, fmt)
    return audio_mod.encode(audio, fmt)


class Service:
    def __init__(self, cfg):
        self.cfg = cfg
        self.router = Router(cfg)
        self.cache: AudioCache | None = AudioCache.from_config(cfg, enabled=cfg.get("server.cache"))
        self.workers = Workers(cfg.get("server.cpu_workers"))
        self.started = time.time()
        self.active = 0
        self.synth_count = 0
        self._lock = threading.Lock()
        self.stt = SpeechToText(cfg, self.store)
        """Speech-to-text (HTTP transcriptions and the Wyoming ASR program share it)."""
        if cfg.get("router.remotes") or cfg.get("gpt_sovits.url") or cfg.get("gpt_sovits.install_dir"):
            from demod_voice import outbound

            threading.Thread(target=outbound.warm, name="outbound-warm", daemon=True).start()

    # -- what routes ask (routes call only the Service) --
    def voices(self, user: str) -> list[dict]:
        return self.router.voices(user)

    def store(self, user: str):
        """The user's voice profiles (``voices.VoiceStore``)."""
        return self.router.store(user)

    def model_map(self) -> dict[str, str]:
        """OpenAI model name -> tier or engine: the schema's defaults plus ``server.model_map``'s entries."""
        from demod_voice.config import SETTINGS

        return {**SETTINGS["server.model_map"].default, **(self.cfg.get("server.model_map") or {})}

    def models(self) -> list[str]:
        """OpenAI model ids: the mapped names, the quality tiers, the engines that can run now (packages and
        weights in place), and ``whisper-1`` when a speech-to-text model is installed."""
        from demod_voice.synthesis import registry

        stt = self.stt.status()
        speech_to_text = ["whisper-1"] if stt["installed"] and stt["model_installed"] else []
        ready = [name for name in self.router.providers if registry.get(name, self.cfg).available(self.cfg)[0]]
        return list(dict.fromkeys([*self.model_map(), *TIERS, *ready, *speech_to_text]))

    def model_choice(self, model: str) -> dict:
        """An OpenAI model name -> ``{"tier": ...}`` or ``{"engine": ...}`` (``server.model_map`` maps names)."""
        mapping = self.model_map()
        target = mapping.get(model, model)
        if target in TIERS:
            return {"tier": target}
        if target in self.router.providers:
            return {"engine": target}
        raise InputError(f"unknown model '{model}'", hint="use one of " + ", ".join([*mapping, *TIERS, *self.router.providers]),
                         param="model", code="model_not_found")

    def rvc_available(self) -> bool:
        return self.router.rvc_available()[0]

    def rvc_problem(self) -> DemodError | None:
        """Why a conversion cannot run here (None when it can): RVC's packages missing (501, the extra to
        install), or its shared weights (HuBERT) missing (503, the path and the command that fetches them)."""
        from demod_voice.errors import NotAvailableError, install_hint
        from demod_voice.synthesis import registry

        converter = registry.converter()
        if not converter.available(None)[0]:
            return NotAvailableError("RVC is not installed", hint=install_hint("rvc"))
        ok, why = converter.available(self.cfg)
        if ok:
            return None
        return HTTPProblem(503, f"RVC cannot convert on this server: {why}", code="rvc_unavailable",
                           hint="the server's operator sets rvc.hubert (demod-voice health names what is missing)")

    def skip_rvc(self, voice: str, user: str) -> None:
        """Audit a conversion skipped because RVC is not installed (the request allowed fallback)."""
        self.router.audit.record(engine=self.router.rvc.name, reason=self.router.rvc_available()[1], detail="conversion skipped",
                                 voice=voice, user=user)

    def engines_report(self, user: str, admin: bool = False) -> dict:
        """Engine status for ``user``: only their own fallback events, and the engines' last error text
        (which may name another user's voice or files) for admins only."""
        engines = self.router.engines()
        if not admin:
            # internal addresses (a remote's URL, GPT-SoVITS's server) are for admins too
            engines = {name: {k: v for k, v in status.items() if k not in ("last_error", "remote", "server")}
                       for name, status in engines.items()}
        events = [e if admin else {k: v for k, v in e.items() if k != "internal"}  # another server's words: admins
                  for e in self.router.audit.recent if admin or e.get("user") == user]
        from demod_voice.synthesis.manager import MODELS

        return {"engines": engines, "tiers": self.cfg.get("router.tiers"), "fallbacks": events[-50:],
                "models": {"loaded": MODELS.status(), "max_loaded": MODELS.max_loaded,
                           "idle_unload_s": MODELS.idle_unload_s, "loads": MODELS.loads, "unloads": MODELS.unloads}}

    # -- helpers --
    def check_text(self, text: str) -> str:
        from demod_voice.text import check_speakable, normalize

        limit = self.cfg.get("server.max_text_chars")
        if len(text) > limit:
            # 400 as OpenAI answers it (its SDK raises BadRequestError; it has no class for 413)
            raise HTTPProblem(400, f"input text is {len(text)} characters; the limit is {limit}",
                              hint="split the text into several requests (server.max_text_chars)",
                              param="input", code="string_above_max_length")
        if not normalize(text):
            raise InputError("input text is empty", hint="give the words to speak")
        return check_speakable(text, "input text")

    def _busy(self, delta: int) -> None:
        with self._lock:
            self.active += delta
            if delta > 0:
                self.synth_count += 1

    # -- synthesis --
    async def speak(self, req: TTSRequest, fmt: str, stream: bool, use_cache: bool = True,
                    client_gone: Callable[[], Awaitable[bool]] | None = None, timestamps: bool = False,
                    sse: bool = False, sample_rate: int | None = None) -> Result:
        """Synthesise ``req`` as ``fmt``; ``stream`` sends it sentence by sentence as it is made.

        ``timestamps``: a JSON answer (base64 audio + word timings), or with ``sse`` a stream of
        Server-Sent Events, each an audio delta and the words it completes. ``sse`` alone: OpenAI's
        ``stream_format: "sse"``.

        ``client_gone`` (the HTTP request's ``is_disconnected``) is polled while a whole-body request
        waits: when the client has left, its job is taken out of the queue or stopped at the next sentence.

        ``sample_rate`` resamples the answer (OpenAI's ``pcm`` is 24 kHz); otherwise the voice keeps its own
        rate. A ``pcm`` answer says its rate in ``X-Sample-Rate``.
        """
        self.check_text(req.text)
        arrived = time.monotonic()
        rvc = self.router.rvc.request(req.rvc) if req.rvc else None  # input errors before any engine runs
        fmt = audio_mod.format_for(None, fmt)
        # one deadline for the whole answer: queue, synthesis, encoding and streaming, for a request that waited
        # on another (de-duplication) as for any other
        deadline = arrived + self.cfg.get("server.request_timeout_s")
        if timestamps or sse:
            return await self._speak_events(req, fmt, rvc, words=timestamps, sse=sse, client_gone=client_gone,
                                            sample_rate=sample_rate, deadline=deadline)
        stream = stream and fmt in STREAMABLE
        plan = await asyncio.to_thread(self.router.plan, req)
        headers = {"X-Voice": plan.voice.name}
        if plan.skipped:
            headers["X-Fallback"] = ", ".join(f"{n}: {r}" for n, r, _ in plan.skipped)
        media_type = audio_mod.MEDIA_TYPES[fmt]
        claim: Claim | None = None
        if self.cache is not None and use_cache:
            # scoped per user: a hit must not tell one user what another asked for (X-Cache, timing)
            # the one key of the synthesis layer: the CLI and batch store and find the same entries
            key = await asyncio.to_thread(keys.route_key, plan, self.cfg, fmt=fmt, rvc=rvc, scope=req.user,
                                          sample_rate=sample_rate, how=keys.STREAM if stream else keys.HTTP_WHOLE)
            # in a worker thread: a file read here, a handle call to the cache deployment under serve --ray
            entry = await asyncio.to_thread(self.cache.get, key)
            if entry is None:
                claim = await asyncio.to_thread(self.cache.claim, key)
                if not claim.leader:
                    # a leader can stall (its client stopped reading): wait for it at most half the request's
                    # time, then compute without caching, as when the leader failed (entry None)
                    try:
                        entry = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(claim.future)),
                                                       max(0.001, (deadline - time.monotonic()) / 2))
                    except TimeoutError:
                        # its own synthesis then gets what is left of its time: an answer or a 504 within
                        # request_timeout_s of its arrival, however the leader behaves
                        entry = None
                    claim = None
            if entry is not None:
                # an entry the CLI or a batch job stored names its engine too (keys.entry_meta)
                return Result(media_type, {**headers, "X-Engine": plan.candidates[0].engine,
                                           **entry.meta.get("headers", {}), "X-Cache": "hit"}, body=entry.data)
            headers["X-Cache"] = "miss"
        else:
            headers["X-Cache"] = "off"
        try:
            engine, queue, cancel = await self._start(plan, rvc, client_gone, deadline=deadline)
        except BaseException:
            if claim:
                claim.resolve(None)
            raise
        headers["X-Engine"] = engine
        if engine != plan.candidates[0].engine:
            fell = [f"{c.engine}: failed" for c in plan.candidates if c.engine != engine][:1]
            headers["X-Fallback"] = ", ".join(filter(None, [headers.get("X-Fallback", ""), *fell]))
        headers.update(identity_headers(plan, engine, headers))
        # cache only what the first choice produced: a fallback result must not outlive the failure
        store = engine == plan.candidates[0].engine
        if stream:
            first = None
            if fmt == "pcm":  # raw samples: the rate goes in a header, so wait for the first chunk to know it
                try:
                    first = await self._next(queue, deadline, client_gone, cancel)
                except BaseException:
                    cancel.set()
                    if claim:
                        claim.resolve(None)
                    raise
                if first is not None:
                    headers["X-Sample-Rate"] = str(sample_rate or first.sample_rate)
            cache_headers = _cached_headers(headers)
            return Result(media_type, headers, stream=self._stream(fmt, queue, cancel, claim, cache_headers, store,
                                                                   sample_rate, first, deadline=deadline),
                          send_timeout_s=self.cfg.get("server.send_timeout_s"))
        try:
            chunks = await self._collect(queue, client_gone, deadline=deadline, cancel=cancel)
            whole = audio_mod.concat(chunks)
            if sample_rate:
                whole = await asyncio.to_thread(audio_mod.resample, whole, sample_rate)
            data = await asyncio.to_thread(encode_whole, whole, fmt)
        except BaseException:
            cancel.set()
            if claim:
                claim.resolve(None)
            raise
        if fmt == "pcm":
            headers["X-Sample-Rate"] = str(whole.sample_rate)
        cache_headers = _cached_headers(headers)
        if claim:
            # the length and rate too: a batch job that hits this entry reports them (keys.entry_meta)
            claim.resolve(data, {"headers": cache_headers, "sample_rate": whole.sample_rate,
                                 "duration": round(float(whole.duration), 6)}, tag=plan.voice.tag, store=store)
        return Result(media_type, headers, body=data)

    async def _speak_events(self, req: TTSRequest, fmt: str, rvc, words: bool, sse: bool,
                            client_gone=None, sample_rate: int | None = None, deadline: float | None = None) -> Result:
        """JSON with base64 audio and words, or SSE deltas (no audio cache: the answer is not a file)."""
        req.words = words
        plan = await asyncio.to_thread(self.router.plan, req)
        deadline = deadline or time.monotonic() + self.cfg.get("server.request_timeout_s")
        engine, queue, cancel = await self._start(plan, rvc, client_gone, deadline=deadline)
        headers = {"X-Voice": plan.voice.name, "X-Engine": engine, "X-Cache": "off"}
        headers.update(identity_headers(plan, engine, headers))
        if sse:
            return Result("text/event-stream", {**headers, "Cache-Control": "no-cache"},
                          stream=self._events(fmt, queue, cancel, words, len(req.text), sample_rate, deadline),
                          send_timeout_s=self.cfg.get("server.send_timeout_s"))
        try:
            chunks = await self._collect(queue, client_gone, deadline=deadline, cancel=cancel)
        finally:
            cancel.set()
        timeline = captions.Timeline()
        for chunk in chunks:
            timeline.add(chunk.duration, chunk.words)
        whole = audio_mod.concat(chunks)
        if sample_rate:
            whole = await asyncio.to_thread(audio_mod.resample, whole, sample_rate)
        data = await asyncio.to_thread(encode_whole, whole, fmt)
        body = {"audio": base64.b64encode(data).decode("ascii"), "format": fmt,
                "media_type": audio_mod.MEDIA_TYPES[fmt], "sample_rate": whole.sample_rate,
                "duration": round(whole.duration, 3), "engine": engine,
                "words": captions.words_to_dicts(timeline.words)}
        return Result("application/json", headers, body=json.dumps(body).encode("utf-8"))

    async def _events(self, fmt: str, queue: asyncio.Queue, cancel: threading.Event, words: bool,
                      input_chars: int, sample_rate: int | None = None,
                      deadline: float | None = None) -> AsyncIterator[bytes]:
        """``speech.audio.delta`` events (audio bytes of one encoder, base64) then ``speech.audio.done``."""
        deadline = deadline or time.monotonic() + self.cfg.get("server.request_timeout_s")
        encoder = streaming.StreamEncoder(fmt, sample_rate)
        timeline = captions.Timeline()

        def event(payload: dict) -> bytes:
            return f"data: {json.dumps(payload)}\n\n".encode()

        def delta(data: bytes, placed: list | None) -> dict:
            payload = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
            if words:
                payload["words"] = captions.words_to_dicts(placed or [])
            return payload

        try:
            while (chunk := await self._next(queue, deadline)) is not None:
                data = await asyncio.to_thread(encoder.write, chunk)
                placed = timeline.add(chunk.duration, chunk.words)
                if data or placed:
                    yield event(delta(data, placed))
            tail = await asyncio.to_thread(encoder.finish)
            if tail:
                yield event(delta(tail, []))
            done = {"type": "speech.audio.done", "duration": round(timeline.offset, 3),
                    "usage": {"input_tokens": input_chars, "output_tokens": 0, "total_tokens": input_chars}}
            if words:
                done["words"] = captions.words_to_dicts(timeline.words)
            yield event(done)
        except DemodError as exc:  # the status line is gone: report in the stream (the SDK raises on "error")
            yield event({"type": "error", **error_body(status_for(exc), exc.message, exc.code, exc.hint, exc.param)})
        finally:
            cancel.set()
            encoder.close()

    async def _start(self, plan: Route, rvc=None, client_gone=None,
                     deadline: float | None = None) -> tuple[str, asyncio.Queue, threading.Event]:
        """Try the plan's candidates in order; return (engine, chunk queue, cancel flag) once audio flows.

        The one mechanism for device work: each candidate runs as one job on its device's queue (a
        single thread per GPU, a bounded pool for the CPU), where it starts, yields its chunks and checks
        its cancel flag between them. A candidate that gives no audio within ``router.timeout_s`` is
        cancelled -- it stops at its next chunk, and anything else for that device waits behind it in the
        same queue -- and the next candidate goes to its own device's queue.
        """
        deadline = deadline or time.monotonic() + self.cfg.get("server.request_timeout_s")
        first_timeout = self.cfg.get("router.timeout_s")
        failures: list = []
        for index, cand in enumerate(plan.candidates):
            queue: asyncio.Queue = asyncio.Queue()
            cancel = threading.Event()
            running, ready = self._submit(cand, queue, cancel, rvc, deadline)
            try:
                # waiting for the device is bounded by the request's deadline; the engine's own
                # first-chunk timeout starts when it runs
                await _watching(running, max(0.001, deadline - time.monotonic()), client_gone, cancel)
                remaining = deadline - time.monotonic()
                engine = await _watching(ready, max(0.001, min(first_timeout, remaining)), client_gone, cancel)
            except TimeoutError:
                cancel.set()
                if deadline - time.monotonic() <= 0.01:
                    raise HTTPProblem(504, _too_slow(self.cfg), hint="try again later or raise server.request_timeout_s") from None
                fallback = self.router.timed_out(cand, first_timeout)
            except Fallback as exc:
                fallback = exc
            else:
                return engine, queue, cancel
            failures.append((cand.engine, fallback))
            self.router.fell_back(plan, index, fallback)
        raise self.router.all_failed(plan, failures)

    def _submit(self, cand: Candidate, queue: asyncio.Queue, cancel: threading.Event,
                rvc, deadline: float | None = None) -> tuple[asyncio.Future, asyncio.Future]:
        """Queue one candidate on its device: (running, ready) futures; ``ready`` gives the engine name
        once audio flows, ``running`` settles when the job leaves the queue.

        Calls to other servers made by the job end at the request's ``deadline`` or when ``cancel`` is set
        (``outbound.scope``), so a stalled remote frees its worker and its locks with the request."""
        from demod_voice import outbound

        loop = asyncio.get_running_loop()
        running: asyncio.Future = loop.create_future()
        ready: asyncio.Future = loop.create_future()

        def settle(value=None, error: BaseException | None = None, fut: asyncio.Future = ready) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

        def job() -> None:
            with outbound.scope(deadline, cancel):
                run()

        def run() -> None:
            started = False
            self._busy(+1)
            try:
                if cancel.is_set():  # the client went away (or the candidate was given up) while it queued
                    return
                loop.call_soon_threadsafe(settle, True, None, running)
                chunks = self.router.attempt(cand)
                started = True
                loop.call_soon_threadsafe(settle, cand.engine)
                if rvc is not None:
                    chunks = chain.finite(chain.converted(chunks, lambda chunk: self.router.convert(chunk, rvc)), self.router.rvc.name)
                for chunk in chunks:
                    if cancel.is_set():  # stopped at the next sentence
                        chunks.close()
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except BaseException as exc:  # handed to the request, which reports it
                if started:
                    loop.call_soon_threadsafe(queue.put_nowait, exc)
                else:
                    loop.call_soon_threadsafe(settle, None, exc)
            finally:
                self._busy(-1)

        self.workers.executor_for(cand.device).submit(job)
        return running, ready

    async def _next(self, queue: asyncio.Queue, deadline: float, client_gone=None, cancel=None):
        remaining = deadline - time.monotonic()
        try:
            item = await _watching(queue.get(), max(0.001, remaining), client_gone, cancel)
        except TimeoutError:
            raise HTTPProblem(504, _too_slow(self.cfg), hint="shorten the text or raise server.request_timeout_s") from None
        if isinstance(item, BaseException):
            raise item
        return item

    async def _collect(self, queue: asyncio.Queue, client_gone=None, deadline: float | None = None,
                       cancel: threading.Event | None = None) -> list[Audio]:
        """Every chunk of a whole-body answer; a client that leaves meanwhile stops the engine job (``cancel``)."""
        deadline = deadline or time.monotonic() + self.cfg.get("server.request_timeout_s")
        chunks = []
        while (chunk := await self._next(queue, deadline, client_gone, cancel)) is not None:
            chunks.append(chunk)
        return chunks

    async def _stream(self, fmt: str, queue: asyncio.Queue, cancel: threading.Event, claim: Claim | None,
                      headers: dict, store: bool, sample_rate: int | None = None,
                      first: Audio | None = None, deadline: float | None = None) -> AsyncIterator[bytes]:
        """Encode the chunks as they come (``first``: one already taken from the queue)."""
        deadline = deadline or time.monotonic() + self.cfg.get("server.request_timeout_s")
        sent: list[bytes] = []
        finished = complete = False
        # one encoder per response: the stream is one valid file
        encoder = streaming.StreamEncoder(fmt, sample_rate)
        try:
            try:
                while (chunk := first or await self._next(queue, deadline)) is not None:
                    first = None
                    data = await asyncio.to_thread(encoder.write, chunk)
                    if data:
                        sent.append(data)
                        yield data
                    if time.monotonic() > deadline:
                        raise HTTPProblem(504, _too_slow(self.cfg))
                complete = True
            except HTTPProblem as exc:
                if exc.status != 504:
                    raise
                # out of time after the status line went out: end the file cleanly (shorter), never cache it
                _LOGGER.warning("a streamed answer was cut at server.request_timeout_s")
            data = await asyncio.to_thread(encoder.finish)
            if data:
                sent.append(data)
                yield data
            finished = complete
        finally:
            cancel.set()
            encoder.close()
            if claim:
                claim.resolve(b"".join(sent) if finished else None, {"headers": headers}, store=store)

    async def convert(self, data: bytes, options: dict, fmt: str) -> tuple[bytes, dict]:
        from demod_voice.synthesis import registry

        request = self.router.rvc.request(options)
        # cheap checks first: an unknown voice is a 404 before any decoding
        await asyncio.to_thread(registry.converter().resolve_voice, request.voice, self.cfg)
        # decoded off the event loop, block by block, refused once past rvc.max_input_s
        source = await asyncio.to_thread(audio_mod.decode_upload, data, "uploaded audio",
                                         self.cfg.get("rvc.max_input_s"), "rvc.max_input_s")
        executor = self.workers.executor_for("cpu" if self.cfg.get("device") == "cpu" else "gpu")

        def job() -> bytes:
            self._busy(+1)
            try:
                return audio_mod.encode(self.router.convert(source, request), fmt)
            finally:
                self._busy(-1)

        timeout = self.cfg.get("server.request_timeout_s")
        try:
            out = await asyncio.wait_for(asyncio.wrap_future(executor.submit(job)), timeout)
        except TimeoutError:
            raise HTTPProblem(504, f"conversion took longer than {timeout:.0f} s") from None
        return out, {"X-Engine": self.router.rvc.name}

    def preload(self) -> None:
        """Load the default voice of the default engine now (``--preload``)."""
        self.router.providers[self.router.default_engine()].preload(self.router.default_voice())

    def health(self) -> dict:
        return {"status": "ok", "active_jobs": self.active, "uptime_s": round(time.time() - self.started, 1),
                "cache": self.cache.stats() if self.cache else None,
                "engines": {name: {"installed": s["installed"], "available": s["available"], "circuit": s["circuit"]}
                            for name, s in self.router.engines().items()},
                "stt": self.stt.status()}

    def close(self) -> None:
        self.workers.shutdown()
        if self.cache is not None:
            self.cache.close()

