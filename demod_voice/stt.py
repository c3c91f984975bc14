"""Speech-to-text requests: model choice, limits and reference-sample collection, for every front end.

``/v1/audio/transcriptions`` (and ``/translations``) and the Wyoming ASR
program both build an ``STTRequest`` and call ``SpeechToText.run``; the
Whisper model itself is shared through the engine's per-process cache.

Collection: a request that names a saved voice of its user (``collect``)
adds the audio to that profile as a sample, with the transcript and its
quality score. When the sample scores at least ``stt.collect_min_score`` and
the automatic reference choice would still be 5-10 s long, the reference is
chosen again. The result says what happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from demod_voice.audio import Audio
from demod_voice.errors import InputError

_LOGGER = logging.getLogger(__name__)

#: Model names OpenAI clients send; they mean "the configured model".
OPENAI_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
#: Reference length a collected sample may re-select into (seconds).
COLLECT_REFERENCE_S = (5.0, 10.0)


@dataclass
class STTRequest:
    audio: Audio
    model: str | None = None
    """A Whisper registry name, an OpenAI model name, or None: the configured ``stt.model``."""
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    task: str = "transcribe"
    words: bool = False
    user: str = "local"
    collect_voice: str | None = None
    """Add the audio to this saved voice of ``user`` (reference-sample collection)."""
    filename: str = ""


@dataclass
class Collected:
    """What collecting a sample did."""

    voice: str
    sample_id: str
    score: float
    duration: float
    reference_updated: bool
    reference: list[str]
    reference_seconds: float
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


class SpeechToText:
    """The STT side of the service: one per front end, sharing the process-wide Whisper models."""

    def __init__(self, cfg, store_for: Callable[[str], object]):
        self.cfg = cfg
        self.store_for = store_for

    def model_name(self, requested: str | None) -> str:
        """The model a request gets: OpenAI names and empty mean ``stt.model``; paths are refused."""
        if not requested or requested in OPENAI_MODELS:
            return self.cfg.get("stt.model")
        from demod_voice import models

        entry = models.registry(self.cfg).get(requested)
        if requested == self.cfg.get("stt.model") or (entry is not None and entry.kind == "whisper"):
            return requested
        known = sorted(n for n, e in models.registry(self.cfg).items() if e.kind == "whisper")
        raise InputError(f"unknown transcription model '{requested}'",
                         hint="use whisper-1 (the configured model) or one of " + ", ".join(known))

    def engine(self, model: str | None = None):
        from demod_voice.engines.whisper import engine as whisper

        return whisper.for_config(self.cfg, self.model_name(model))

    def check_audio(self, audio: Audio, what: str = "audio") -> Audio:
        limit = self.cfg.get("stt.max_audio_s")
        if audio.duration > limit:
            raise InputError(f"{what} is {audio.duration:.0f} s long; the limit is {limit:.0f} s",
                             hint="send shorter audio or raise stt.max_audio_s")
        if audio.duration < 0.05:
            raise InputError(f"{what} is empty or shorter than 50 ms", hint="send recorded speech")
        return audio

    def check_language(self, model: str | None, language: str | None) -> None:
        """Refuse a language the model lacks before loading it (seconds), from its folder alone."""
        if language:
            from demod_voice.engines.whisper import engine as whisper

            path = whisper.resolve(self.model_name(model), self.cfg)
            whisper.check_language(language, whisper.languages_of(path), path.name)

    def run(self, req: STTRequest):
        """(Transcript, Collected | None). Blocking: call it from a worker thread."""
        self.check_audio(req.audio)
        self.check_language(req.model, req.language)
        engine = self.engine(req.model)
        result = engine.transcribe(req.audio, language=req.language, task=req.task, prompt=req.prompt,
                                   temperature=req.temperature, words=req.words,
                                   beam_size=self.cfg.get("stt.beam_size"))
        collected = self.collect(req, result.text) if req.collect_voice else None
        return result, collected

    async def run_async(self, req: STTRequest):
        timeout = self.cfg.get("server.request_timeout_s")
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.run, req), timeout)
        except TimeoutError:
            from demod_voice.errors import HTTPProblem

            raise HTTPProblem(504, f"transcription took longer than {timeout:.0f} s",
                              hint="send shorter audio or raise server.request_timeout_s") from None

    def collect(self, req: STTRequest, transcript: str) -> Collected:
        """Add the request's audio to the caller's own saved voice; re-select the reference when it helps."""
        from demod_voice import audio as audio_mod
        from demod_voice import voices

        store = self.store_for(req.user)
        name = req.collect_voice
        store.get(name)  # only the caller's own profiles exist in the caller's store
        wav = audio_mod.encode(req.audio, "wav")
        sample = store.add_sample(name, wav, transcript, req.filename or "collected.wav")
        score = float(sample.score.get("overall", 0.0))
        low, high = COLLECT_REFERENCE_S
        threshold = self.cfg.get("stt.collect_min_score")
        durations = {s.id: s.duration for s in store.samples(name)}
        profile = store.get(name)
        updated = False
        if score < threshold:
            reason = f"kept as a sample; its score {score:.2f} is below {threshold:.2f}, so the reference is unchanged"
        else:
            chosen = voices.choose_reference(store.samples(name), low, high)
            seconds = sum(durations[s] for s in chosen)
            if not low <= seconds <= high:
                reason = (f"kept as a sample; a new reference would be {seconds:.1f} s, outside {low:.0f}-{high:.0f} s, "
                          "so the reference is unchanged")
            elif chosen == profile.reference:
                reason = "kept as a sample; the automatic choice keeps the current reference"
            else:
                profile = store.set_reference(name, chosen)
                updated = True
                reason = f"reference re-selected automatically ({seconds:.1f} s)"
        return Collected(voice=name, sample_id=sample.id, score=round(score, 3), duration=sample.duration,
                         reference_updated=updated, reference=list(profile.reference),
                         reference_seconds=round(sum(durations.get(s, 0.0) for s in profile.reference), 3),
                         reason=reason)

    def status(self) -> dict:
        """What ``health`` shows: the engine, the configured model and whether it is installed."""
        return stt_status(self.cfg)


def stt_status(cfg) -> dict:
    """The STT engine's state without loading it (no faster-whisper import)."""
    import importlib.util

    from demod_voice.engines.whisper import engine as whisper
    from demod_voice.errors import DemodError

    out = {"engine": "faster-whisper", "installed": importlib.util.find_spec("faster_whisper") is not None,
           "model": cfg.get("stt.model")}
    try:
        out["model_path"] = str(whisper.resolve(cfg.get("stt.model"), cfg))
        out["model_installed"] = True
    except DemodError as exc:
        out["model_installed"] = False
        out["problem"] = str(exc)
    return out


# --- decoding uploads -------------------------------------------------------------------------

def decode(data: bytes, what: str, max_seconds: float) -> Audio:
    """Any upload -> mono float audio: libsndfile first (wav/flac/ogg/mp3), then PyAV (m4a, webm, mp4...).

    Decoded block by block and refused (413) as soon as it passes ``max_seconds`` (``stt.max_audio_s``):
    a small compressed upload can hold hours of audio. CPU work: call it off the event loop.
    """
    from demod_voice import audio as audio_mod

    return audio_mod.decode_upload(data, what, max_seconds, "stt.max_audio_s")


def installed_models(cfg) -> list[tuple[str, Path, list[str]]]:
    """``(name, folder, languages)`` of the configured Whisper model, then every other registry Whisper model,
    each only when its folder is in place."""
    from demod_voice import models
    from demod_voice.engines.whisper import engine as whisper
    from demod_voice.errors import DemodError

    configured = cfg.get("stt.model")
    names = [configured, *(n for n, e in models.registry(cfg).items() if e.kind == "whisper" and n != configured)]
    out = []
    for name in names:
        try:
            path = whisper.resolve(name, cfg)
        except DemodError:
            continue
        out.append((name, path, whisper.languages_of(path)))
    return out
