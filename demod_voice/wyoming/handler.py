"""One Wyoming connection: read events (bounded), answer describe, synthesize and transcribe.

Events are read by ``read_event`` here rather than the ``wyoming`` package's
reader because a hostile client names its own payload sizes and pace: lines,
data and payloads are bounded before anything is buffered, and an event must
arrive within ``wyoming.header_timeout_s`` once started (an idle connection is
closed after ``wyoming.idle_timeout_s``).

Home Assistant's one-shot loops (synthesize, transcribe) read until
``audio-stop``, ``transcript`` or a closed connection, so an error there is an
``error`` event followed by a close, as wyoming-piper does. In a streaming
synthesis an error is followed by ``synthesize-stopped`` instead; after other
errors (unknown event, describe) the connection stays usable. A malformed
frame gets an ``error`` event and a clean close; a vanished client ends only
its own connection. Received audio is bounded per connection
(``stt.max_audio_s``) and for all connections together (``limits.AudioBudget``).
"""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from demod_voice.errors import DemodError, InputError
from demod_voice.server.router import TTSRequest
from demod_voice.text import complete_sentences
from demod_voice.wyoming import info, speech
from demod_voice.wyoming.limits import AudioBudget

_LOGGER = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
"""Longest JSON header line (also the stream reader's buffer limit)."""
MAX_DATA = 256 * 1024
"""Largest additional JSON data block."""
MAX_PAYLOAD = 1024 * 1024
"""Largest binary payload of one event (an audio chunk is usually 2-8 KB)."""
_WIDTHS = (2,)
"""Sample widths accepted for transcription (Home Assistant sends 16-bit)."""


#: Event types of Home Assistant's one-shot exchanges: an error in one ends the connection.
_ONE_SHOT = ("synthesize", "transcribe", "audio-start", "audio-chunk", "audio-stop")
#: What ``json`` raises on hostile text: bad syntax, ``Infinity`` lengths, nesting deeper than the stack.
_JSON_ERRORS = (ValueError, RecursionError, OverflowError)


class FrameError(Exception):
    """The byte stream is not a valid Wyoming frame; the connection cannot continue."""


class IdleTimeout(Exception):
    """No event started within the idle timeout."""


def _length(header: dict, key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if type(value) is not int:
        raise FrameError(f"event '{key}' must be a whole number of bytes")
    if not 0 <= value <= limit:
        raise FrameError(f"event {key.split('_')[0]} of {value} bytes is over the limit of {limit}")
    return value


async def read_event(reader: asyncio.StreamReader, idle: float | None = None,
                     complete: float | None = None) -> Event | None:
    """The next event, None at end of stream; FrameError on malformed or oversized frames.

    ``idle``: seconds to wait for an event to start (IdleTimeout after); ``complete``: seconds for the
    whole event (header, data and payload) once its first byte came (FrameError after).
    """
    try:
        async with asyncio.timeout(idle):
            first = await reader.readexactly(1)
    except asyncio.IncompleteReadError:
        return None
    except TimeoutError:
        raise IdleTimeout from None
    try:
        async with asyncio.timeout(complete):
            return await _read_rest(reader, first)
    except TimeoutError:
        raise FrameError(f"event not complete within {complete:g} s (wyoming.header_timeout_s)") from None


async def _read_rest(reader: asyncio.StreamReader, first: bytes) -> Event:
    try:
        line = first if first == b"\n" else first + await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise FrameError("the connection closed in the middle of an event") from None
    except asyncio.LimitOverrunError:
        raise FrameError(f"event header longer than {MAX_LINE} bytes") from None
    try:
        header = json.loads(line)
        kind = header["type"]
        data = header.get("data") or {}
    except (*_JSON_ERRORS, KeyError, TypeError, AttributeError):
        raise FrameError("event header is not a JSON object with a 'type'") from None
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise FrameError("event 'type' must be a string and 'data' an object")
    data_length = _length(header, "data_length", MAX_DATA)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD)
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise FrameError("event data must be a JSON object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise FrameError("the connection closed in the middle of an event") from None
    except _JSON_ERRORS:
        raise FrameError("event data is not valid JSON") from None
    return Event(type=kind, data=data, payload=payload)


class AudioBudgetError(DemodError):
    """All connections together hold ``wyoming.max_audio_bytes`` of audio."""


def _samples(parts: list[bytes], fmt: AudioStart) -> np.ndarray:
    """16-bit PCM pieces -> float32 mono samples."""
    data = b"".join(parts)
    data = data[: len(data) - len(data) % (fmt.width * fmt.channels)]
    samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    if fmt.channels == 2:
        samples = samples.reshape(-1, 2).mean(axis=1)
    return samples


def _user_message(exc: DemodError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


class Connection:
    """State of one client: an optional text stream being synthesised and an optional audio stream to transcribe."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service, stt, cfg,
                 budget: AudioBudget | None = None):
        self.reader = reader
        self.writer = writer
        self.service = service
        self.stt = stt
        self.cfg = cfg
        self.budget = budget or AudioBudget(cfg.get("wyoming.max_audio_bytes"))
        self.user = cfg.get("wyoming.user")
        self.samples_per_chunk = cfg.get("wyoming.samples_per_chunk")
        # streaming synthesis
        self.streaming: SynthesizeStart | None = None
        self.stream_failed = False
        """An error was sent in this stream: the rest of its text is dropped until synthesize-stop."""
        self.pending_text = ""
        self.audio_rate: int | None = None
        # transcription
        self.transcribe: Transcribe | None = None
        self.audio_format: AudioStart | None = None
        self.audio_parts: list[bytes] = []
        self.audio_bytes = 0
        self.audio_error: str | None = None
        self.handling = False
        """An event is being answered now (a shutdown waits for it)."""

    @property
    def idle(self) -> bool:
        """Waiting for a new request: nothing being answered, no stream or transcription open (a shutdown
        closes such a connection at once)."""
        return not self.handling and self.streaming is None and self.audio_format is None

    async def write(self, event: Event) -> None:
        """Send one event; a client that takes none of it for ``wyoming.idle_timeout_s`` counts as gone."""
        try:
            async with asyncio.timeout(self.cfg.get("wyoming.idle_timeout_s")):
                await async_write_event(event, self.writer)
        except TimeoutError:
            raise ConnectionError("the client stopped reading (wyoming.idle_timeout_s)") from None

    async def error(self, text: str, code: str) -> None:
        await self.write(Error(text=text, code=code).event())

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername") or "unix socket"
        idle, complete = self.cfg.get("wyoming.idle_timeout_s"), self.cfg.get("wyoming.header_timeout_s")
        try:
            while True:
                try:
                    event = await read_event(self.reader, idle, complete)
                except IdleTimeout:
                    _LOGGER.debug("closing Wyoming client %s: idle for %g s", peer, idle)
                    break
                except FrameError as exc:
                    await self.error(str(exc), "bad-frame")
                    await self.drain_and_close()
                    break
                if event is None:
                    break
                self.handling = True
                try:
                    answered = await self.handle(event)
                finally:
                    self.handling = False
                if not answered:
                    await self.drain_and_close()
                    break
        except (ConnectionError, BrokenPipeError) as exc:
            _LOGGER.info("Wyoming client %s went away: %s", peer, exc)
        finally:
            self.release_audio()
            if self.writer.transport.get_write_buffer_size():
                self.writer.transport.abort()  # unsent answers to a client that stopped reading: drop them
            self.writer.close()
            try:
                async with asyncio.timeout(5):
                    await self.writer.wait_closed()
            except (ConnectionError, BrokenPipeError, TimeoutError):
                self.writer.transport.abort()

    async def drain_and_close(self, limit: int = 4 * MAX_PAYLOAD, seconds: float = 2.0) -> None:
        """Half-close, then discard what the client still sends (bounded), so the error event is not lost to a reset."""
        if self.writer.can_write_eof():
            self.writer.write_eof()
        left = limit
        try:
            async with asyncio.timeout(seconds):
                while left > 0 and (data := await self.reader.read(min(left, 65536))):
                    left -= len(data)
        except TimeoutError:
            pass

    async def handle(self, event: Event) -> bool:
        """Answer one event; False when the connection is to be closed (after an error in a one-shot exchange)."""
        try:
            await self.dispatch(event)
            return True
        except (ConnectionError, BrokenPipeError):
            raise
        except Exception as exc:
            await self.report(exc, event.type)
        if self.streaming is not None:  # the stream ends with synthesize-stopped, not with a close
            self.stream_failed = self.stream_failed or SynthesizeChunk.is_type(event.type)
            return True
        return event.type not in _ONE_SHOT

    async def report(self, exc: Exception, kind: str) -> None:
        """The ``error`` event for an exception raised while handling an event of type ``kind``."""
        if isinstance(exc, DemodError):
            await self.error(_user_message(exc), type(exc).__name__)
        elif isinstance(exc, (KeyError, TypeError, ValueError)):
            await self.error(f"event '{kind[:64]}' has a missing or bad field: {exc}", "bad-event")
        else:  # a bug: the client still gets an answer, the log the traceback
            _LOGGER.error("Wyoming event '%s' failed", kind[:64], exc_info=exc)
            await self.error(f"internal error while handling '{kind[:64]}': {type(exc).__name__}", "internal-error")

    async def dispatch(self, event: Event) -> None:
        if Describe.is_type(event.type):
            built = await asyncio.to_thread(info.build, self.service, self.cfg)
            await self.write(built.event())
        elif Ping.is_type(event.type):
            await self.write(Pong(text=Ping.from_event(event).text).event())
        elif Synthesize.is_type(event.type):
            if self.streaming is None:  # Home Assistant sends a plain synthesize beside a stream: ignore that one
                await self.synthesize(Synthesize.from_event(event))
        elif SynthesizeStart.is_type(event.type):
            self.streaming = SynthesizeStart.from_event(event)
            self.stream_failed = False
            self.pending_text = ""
            self.audio_rate = None
        elif SynthesizeChunk.is_type(event.type):
            await self.stream_chunk(SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(event.type):
            await self.stream_stop()
        elif Transcribe.is_type(event.type):
            self.transcribe = Transcribe.from_event(event)
        elif AudioStart.is_type(event.type):
            self.audio_start(AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            await self.audio_chunk(event)
        elif AudioStop.is_type(event.type):
            await self.audio_stop()
        else:
            raise InputError(f"unknown event type '{event.type[:64]}'",
                             hint="this server handles describe, synthesize(-start/-chunk/-stop), transcribe, "
                                  "audio-start/-chunk/-stop and ping")

    # --- speaking -----------------------------------------------------------------------------

    def request(self, text: str, voice, continued: bool = False) -> TTSRequest:
        """A Wyoming voice (name, speaker, language) -> the same request HTTP would build."""
        name = (voice.name if voice else None) or ""
        rvc = None
        if info.CHAIN in name:
            name, rvc_name = name.split(info.CHAIN, 1)
            from demod_voice.paths import validate_name

            rvc = {"voice": validate_name(rvc_name, "RVC voice name")}
            if not self.service.rvc_available():
                raise InputError(f"voice '{voice.name}' needs RVC, which is not installed",
                                 hint="install the 'rvc' extra or pick a voice without '+'")
        if not name and voice is not None and voice.language:
            name = self.voice_for_language(voice.language)
        params = {"speaker": voice.speaker} if voice is not None and voice.speaker else {}
        return TTSRequest(text=text, voice=name, user=self.user, params=params, rvc=rvc, origin="wyoming",
                          continued=continued,
                          language=voice.language if voice is not None and voice.language and not rvc else None)

    def voice_for_language(self, language: str) -> str:
        """A voice for a language only: the default Piper voice if it fits, another Piper voice, then a profile."""
        wanted = language.replace("-", "_").lower()
        default = self.service.router.default_voice()
        piper_voices = [e.name for e in self.service.router.catalog_entries()
                        if e.language.replace("-", "_").lower().startswith(wanted)]
        if piper_voices:
            return default if default in piper_voices else piper_voices[0]
        for profile in self.service.store(self.user).list():
            if profile.language.replace("-", "_").lower().startswith(wanted.split("_")[0]):
                return profile.name
        raise InputError(f"no voice speaks language '{language}'", hint="send describe for the voices")

    async def speak(self, text: str, voice) -> None:
        """Synthesise ``text`` and send its audio; audio-start only before the first audio of a response."""
        # a later flush of a stream continues the answer begun: sentence_silence before it, as one-shot has
        rate, pcm = await speech.speak_pcm(self.service, self.request(text, voice, continued=self.audio_rate is not None))
        if self.audio_rate is None:
            self.audio_rate = rate
            await self.write(AudioStart(rate=rate, width=2, channels=1).event())
        step = self.samples_per_chunk * 2
        leftover = b""
        async for piece in pcm:
            data = leftover + piece
            whole = len(data) - len(data) % step if len(data) >= step else 0
            for start in range(0, whole, step):
                await self.write(AudioChunk(rate=rate, width=2, channels=1, audio=data[start:start + step]).event())
            leftover = data[whole:]
        if leftover:
            await self.write(AudioChunk(rate=rate, width=2, channels=1, audio=leftover).event())

    async def synthesize(self, request: Synthesize) -> None:
        self.audio_rate = None
        await self.speak(request.text, request.voice)
        await self.write(AudioStop().event())
        self.audio_rate = None

    async def stream_chunk(self, text: str) -> None:
        if self.streaming is None:
            raise InputError("synthesize-chunk without synthesize-start", hint="send synthesize-start first")
        if self.stream_failed:
            return
        self.pending_text += text
        limit = self.cfg.get("server.max_text_chars")
        if len(self.pending_text) > limit:
            self.pending_text = ""
            raise InputError(f"streamed text has no sentence end within {limit} characters",
                             hint="end sentences with . ! or ? (server.max_text_chars)")
        complete, self.pending_text = complete_sentences(self.pending_text)
        if complete:
            await self.speak(complete, self.streaming.voice)

    async def stream_stop(self) -> None:
        if self.streaming is None:
            raise InputError("synthesize-stop without synthesize-start", hint="send synthesize-start first")
        voice, rest = self.streaming.voice, self.pending_text.strip()
        failed, self.streaming, self.pending_text, self.stream_failed = self.stream_failed, None, "", False
        try:
            if rest and not failed:
                await self.speak(rest, voice)
        except (ConnectionError, BrokenPipeError):
            raise
        except Exception as exc:  # the error comes before synthesize-stopped, which ends the client's loop
            await self.report(exc, "synthesize-stop")
        finally:
            if self.audio_rate is not None:
                await self.write(AudioStop().event())
            self.audio_rate = None
            await self.write(SynthesizeStopped().event())

    # --- listening ----------------------------------------------------------------------------

    def release_audio(self) -> None:
        """Drop the buffered audio and give its bytes back to the shared budget."""
        self.budget.give(self.audio_bytes)
        self.audio_parts, self.audio_bytes = [], 0

    def audio_start(self, start: AudioStart) -> None:
        self.release_audio()
        self.audio_format = start
        self.audio_error = None
        if start.width not in _WIDTHS or start.channels not in (1, 2) or not 8000 <= start.rate <= 96000:
            self.audio_error = (f"audio format {start.rate} Hz, {start.width * 8} bit, {start.channels} channel(s) "
                                "is not supported (16-bit mono or stereo, 8-96 kHz)")

    async def audio_chunk(self, event: Event) -> None:
        if self.audio_format is None:
            raise InputError("audio-chunk without audio-start", hint="send transcribe and audio-start first")
        if self.audio_error:
            return
        audio = event.payload or b""
        fmt = self.audio_format
        limit = self.cfg.get("stt.max_audio_s") * fmt.rate * fmt.width * fmt.channels
        if self.audio_bytes + len(audio) > limit:
            self.release_audio()
            self.audio_error = (f"audio is longer than the limit of {self.cfg.get('stt.max_audio_s'):.0f} s "
                                "(stt.max_audio_s)")
            return
        if not self.budget.take(len(audio)):
            self.release_audio()
            self.audio_format = None
            raise AudioBudgetError(f"the server holds {self.budget.limit} bytes of Wyoming audio already "
                                   "(wyoming.max_audio_bytes)", hint="try again when other transcriptions end")
        self.audio_bytes += len(audio)
        self.audio_parts.append(audio)

    async def audio_stop(self) -> None:
        from demod_voice.audio import Audio
        from demod_voice.stt import STTRequest

        fmt, parts, problem = self.audio_format, self.audio_parts, self.audio_error
        request, self.transcribe = self.transcribe, None
        self.audio_format, self.audio_error = None, None
        if fmt is None:
            raise InputError("audio-stop without audio-start", hint="send transcribe and audio-start first")
        try:
            if problem:
                raise InputError(problem)
            samples = await asyncio.to_thread(_samples, parts, fmt)  # megabytes of conversion: not on the loop
        finally:
            parts = None
            self.release_audio()
        collect = self.cfg.get("wyoming.collect_voice")
        req = STTRequest(audio=Audio(samples, fmt.rate), model=request.name if request else None,
                         language=request.language if request else None, user=self.user,
                         collect_voice=collect or None, filename="wyoming.wav")
        result, collected = await self.stt.run_async(req)
        context = {"demod_voice": {"collected": collected.to_dict()}} if collected else None
        await self.write(Transcript(text=result.text, language=result.language, context=context).event())
