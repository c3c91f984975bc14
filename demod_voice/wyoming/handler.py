"""One Wyoming connection: read events (bounded), answer describe, synthesize and transcribe.

Events are read by ``read_event`` here rather than the ``wyoming`` package's
reader because a hostile client names its own payload sizes: lines, data and
payloads are bounded before anything is buffered. A user error (unknown
voice, bad text, unknown event, oversized audio) gets a Wyoming ``error``
event and the connection stays usable; a malformed frame gets an ``error``
event and a clean close; a vanished client ends only its own connection.
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

_LOGGER = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
"""Longest JSON header line (also the stream reader's buffer limit)."""
MAX_DATA = 256 * 1024
"""Largest additional JSON data block."""
MAX_PAYLOAD = 1024 * 1024
"""Largest binary payload of one event (an audio chunk is usually 2-8 KB)."""
_WIDTHS = (2,)
"""Sample widths accepted for transcription (Home Assistant sends 16-bit)."""


class FrameError(Exception):
    """The byte stream is not a valid Wyoming frame; the connection cannot continue."""


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, None at end of stream; FrameError on malformed or oversized frames."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise FrameError("the connection closed in the middle of an event") from None
        return None
    except asyncio.LimitOverrunError:
        raise FrameError(f"event header longer than {MAX_LINE} bytes") from None
    try:
        header = json.loads(line)
        kind = header["type"]
        data = header.get("data") or {}
        data_length = int(header.get("data_length") or 0)
        payload_length = int(header.get("payload_length") or 0)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FrameError("event header is not a JSON object with a 'type'") from None
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise FrameError("event 'type' must be a string and 'data' an object")
    if not 0 <= data_length <= MAX_DATA:
        raise FrameError(f"event data of {data_length} bytes is over the limit of {MAX_DATA}")
    if not 0 <= payload_length <= MAX_PAYLOAD:
        raise FrameError(f"event payload of {payload_length} bytes is over the limit of {MAX_PAYLOAD}")
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise FrameError("event data must be a JSON object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise FrameError("the connection closed in the middle of an event") from None
    except ValueError:
        raise FrameError("event data is not valid JSON") from None
    return Event(type=kind, data=data, payload=payload)


def _user_message(exc: DemodError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


class Connection:
    """State of one client: an optional text stream being synthesised and an optional audio stream to transcribe."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service, stt, cfg):
        self.reader = reader
        self.writer = writer
        self.service = service
        self.stt = stt
        self.cfg = cfg
        self.user = cfg.get("wyoming.user")
        self.samples_per_chunk = cfg.get("wyoming.samples_per_chunk")
        # streaming synthesis
        self.streaming: SynthesizeStart | None = None
        self.pending_text = ""
        self.audio_rate: int | None = None
        # transcription
        self.transcribe: Transcribe | None = None
        self.audio_format: AudioStart | None = None
        self.audio_parts: list[bytes] = []
        self.audio_bytes = 0
        self.audio_error: str | None = None

    async def write(self, event: Event) -> None:
        await async_write_event(event, self.writer)

    async def error(self, text: str, code: str) -> None:
        await self.write(Error(text=text, code=code).event())

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername") or "unix socket"
        try:
            while True:
                try:
                    event = await read_event(self.reader)
                except FrameError as exc:
                    await self.error(str(exc), "bad-frame")
                    await self.drain_and_close()
                    break
                if event is None:
                    break
                await self.handle(event)
        except (ConnectionError, BrokenPipeError) as exc:
            _LOGGER.info("Wyoming client %s went away: %s", peer, exc)
        finally:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, BrokenPipeError):
                pass

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

    async def handle(self, event: Event) -> None:
        try:
            await self.dispatch(event)
        except DemodError as exc:
            await self.error(_user_message(exc), type(exc).__name__)
        except (KeyError, TypeError, ValueError) as exc:
            await self.error(f"event '{event.type}' has a missing or bad field: {exc}", "bad-event")

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

    def request(self, text: str, voice) -> TTSRequest:
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
        return TTSRequest(text=text, voice=name, user=self.user, params=params, rvc=rvc,
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
        rate, pcm = await speech.speak_pcm(self.service, self.request(text, voice))
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
        self.streaming, self.pending_text = None, ""
        try:
            if rest:
                await self.speak(rest, voice)
        finally:
            if self.audio_rate is not None:
                await self.write(AudioStop().event())
            self.audio_rate = None
            await self.write(SynthesizeStopped().event())

    # --- listening ----------------------------------------------------------------------------

    def audio_start(self, start: AudioStart) -> None:
        self.audio_format = start
        self.audio_parts, self.audio_bytes, self.audio_error = [], 0, None
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
        self.audio_bytes += len(audio)
        limit = self.cfg.get("stt.max_audio_s") * fmt.rate * fmt.width * fmt.channels
        if self.audio_bytes > limit:
            self.audio_parts = []
            self.audio_error = (f"audio is longer than the limit of {self.cfg.get('stt.max_audio_s'):.0f} s "
                                "(stt.max_audio_s)")
            return
        self.audio_parts.append(audio)

    async def audio_stop(self) -> None:
        from demod_voice.audio import Audio
        from demod_voice.stt import STTRequest

        fmt, parts, problem = self.audio_format, self.audio_parts, self.audio_error
        request, self.transcribe = self.transcribe, None
        self.audio_format, self.audio_parts, self.audio_bytes, self.audio_error = None, [], 0, None
        if fmt is None:
            raise InputError("audio-stop without audio-start", hint="send transcribe and audio-start first")
        if problem:
            raise InputError(problem)
        data = b"".join(parts)
        data = data[: len(data) - len(data) % (fmt.width * fmt.channels)]
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        if fmt.channels == 2:
            samples = samples.reshape(-1, 2).mean(axis=1)
        collect = self.cfg.get("wyoming.collect_voice")
        req = STTRequest(audio=Audio(samples, fmt.rate), model=request.name if request else None,
                         language=request.language if request else None, user=self.user,
                         collect_voice=collect or None, filename="wyoming.wav")
        result, collected = await self.stt.run_async(req)
        context = {"demod_voice": {"collected": collected.to_dict()}} if collected else None
        await self.write(Transcript(text=result.text, language=result.language, context=context).event())
