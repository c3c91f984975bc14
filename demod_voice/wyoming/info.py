"""The ``describe`` answer: every voice a Home Assistant user can pick, and the Whisper models.

TTS voices, each with its languages:
- installed Piper voices, with their speakers;
- the saved voice profiles (XTTS clones) of the Wyoming user (``wyoming.user``);
- every RVC voice chained after the TTS voices of ``wyoming.rvc_after`` (default: the
  default Piper voice), named ``TTS+RVC``; any ``TTS+RVC`` pair can be requested.

Only what can really answer is advertised, since Home Assistant makes an
entity of whatever is listed: Piper voices when piper-tts is installed, saved
voices when their own engine, model and reference files are in place, and the
ASR program only when faster-whisper and at least one Whisper model folder are.
"""

from __future__ import annotations

import importlib.util
import logging

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from demod_voice import __version__

_LOGGER = logging.getLogger(__name__)

CHAIN = "+"
"""Separates a TTS voice from the RVC voice after it (never part of a valid name)."""
_ATTRIBUTION = Attribution(name="demod-voice", url="https://github.com/demod-voice/demod-voice")
_PIPER = Attribution(name="Piper (rhasspy)", url="https://github.com/OHF-Voice/piper1-gpl")
_WHISPER = Attribution(name="OpenAI Whisper / faster-whisper", url="https://github.com/SYSTRAN/faster-whisper")


def _speakers(path: str) -> list[TtsVoiceSpeaker] | None:
    from pathlib import Path

    from demod_voice.engines.piper.engine import PiperVoiceConfig, config_path_for
    from demod_voice.errors import InputError

    config = config_path_for(Path(path))
    if config is None:
        return None
    try:
        voice = PiperVoiceConfig.read(config)
    except InputError:
        return None
    if voice.num_speakers <= 1:
        return None
    names = list(voice.speaker_id_map) or [str(i) for i in range(voice.num_speakers)]
    return [TtsVoiceSpeaker(name=n) for n in names]


def _piper_installed() -> bool:
    return importlib.util.find_spec("piper") is not None


def _profile_ready(profile, service, cfg) -> bool:
    """Whether the profile's own engine can speak it now: engine installed, model and reference files present."""
    from demod_voice.errors import DemodError

    if profile.engine == "piper":
        if not _piper_installed():
            return False
        try:
            return service.router.providers["piper"].resolve(profile.piper_voice or cfg.get("piper.default_voice")
                                                             ).is_file()
        except DemodError:
            return False
    if profile.engine != "xtts":  # another registry engine: its own availability probe
        from demod_voice.synthesis import registry

        try:
            return bool(registry.get(profile.engine, cfg).available(cfg)[0])
        except DemodError:
            return False
    if importlib.util.find_spec("TTS") is None:
        return False
    refs = profile.reference_paths()
    if not refs or not all(p.is_file() for p in refs):
        return False
    from demod_voice.engines.xtts.checkpoint import resolve_model_dir

    try:
        resolve_model_dir(cfg)
    except DemodError:
        return False
    return True


def tts_voices(service, cfg) -> list[TtsVoice]:
    user = cfg.get("wyoming.user")
    piper_entries = service.router.catalog_entries() if _piper_installed() else []
    languages = {e.name: [e.language] if e.language else [] for e in piper_entries}
    voices = [TtsVoice(name=e.name, attribution=_PIPER, installed=True, version=None,
                       description=f"Piper {e.name}" + (f" ({e.quality})" if e.quality else ""),
                       languages=languages[e.name], speakers=_speakers(e.path)) for e in piper_entries]
    for profile in service.store(user).list():
        if not _profile_ready(profile, service, cfg):
            continue
        languages[profile.name] = [profile.language]
        voices.append(TtsVoice(name=profile.name, attribution=_ATTRIBUTION, installed=True, version=None,
                               description=f"cloned voice ({profile.engine}) of {user}"
                                           + ("" if profile.reference else ", no reference yet"),
                               languages=[profile.language]))
    if service.rvc_available():
        from demod_voice.engines.rvc import voices as rvc_voices

        bases = [b for b in cfg.get("wyoming.rvc_after") or [cfg.get("piper.default_voice")] if b in languages]
        for rvc in rvc_voices.registered(cfg):
            for base in bases:
                voices.append(TtsVoice(name=f"{base}{CHAIN}{rvc.name}", attribution=_ATTRIBUTION, installed=True,
                                       version=None, description=f"{base} converted to RVC voice {rvc.name}",
                                       languages=languages.get(base, [])))
    return voices


def asr_models(cfg) -> list[AsrModel]:
    """The configured Whisper model and every other registry Whisper model, each only when its folder is in place."""
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
        out.append(AsrModel(name=name, attribution=_WHISPER, installed=True, version=None,
                            description=f"Whisper {path.name}", languages=whisper.languages_of(path)))
    return out


def build(service, cfg) -> Info:
    """The describe answer: a TTS program when a voice can speak, an ASR program when a Whisper model can load."""
    tts, asr = [], []
    voices = tts_voices(service, cfg)
    if voices:
        tts.append(TtsProgram(name="demod-voice", attribution=_ATTRIBUTION, installed=True, version=__version__,
                              description="Cloned and Piper voices (XTTS, Piper, RVC) with router fallback",
                              voices=voices, supports_synthesize_streaming=True))
    models = asr_models(cfg) if importlib.util.find_spec("faster_whisper") is not None else []
    if models:
        asr.append(AsrProgram(name="demod-voice-whisper", attribution=_WHISPER, installed=True, version=__version__,
                              description="Whisper speech-to-text (faster-whisper)", models=models,
                              supports_transcript_streaming=False))
    return Info(tts=tts, asr=asr)
