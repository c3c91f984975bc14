"""The ``describe`` answer: every voice a Home Assistant user can pick, and the Whisper models.

TTS voices, each with its languages:
- installed Piper voices, with their speakers;
- the saved voice profiles (XTTS clones) of the Wyoming user (``wyoming.user``);
- every RVC voice chained after the TTS voices of ``wyoming.rvc_after`` (default: the
  default Piper voice), named ``TTS+RVC``; any ``TTS+RVC`` pair can be requested.

Only what can really answer is advertised, since Home Assistant makes an
entity of whatever is listed: Piper voices when the registry's Piper check
passes (piper-tts and onnxruntime found), saved voices when their engine's own
``available(cfg)`` passes (every package of its extra found and its weights in
place, the same check as ``/api/engines``) and their reference files exist, RVC
chains when RVC's packages and HuBERT weights are there, and the ASR program
only when the 'stt' packages and at least one Whisper model folder are.
"""

from __future__ import annotations

import logging

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from demod_voice import __version__, needs

_LOGGER = logging.getLogger(__name__)

CHAIN = "+"
"""Separates a TTS voice from the RVC voice after it (never part of a valid name)."""
_ATTRIBUTION = Attribution(name="demod-voice", url="https://github.com/demod-voice/demod-voice")
_PIPER = Attribution(name="Piper (rhasspy)", url="https://github.com/OHF-Voice/piper1-gpl")
_WHISPER = Attribution(name="OpenAI Whisper / faster-whisper", url="https://github.com/SYSTRAN/faster-whisper")


def _speakers(engine: str, path: str, cfg) -> list[TtsVoiceSpeaker] | None:
    """The speakers of a catalog voice, when its engine can name them."""
    from demod_voice.synthesis import registry

    names = getattr(registry.get(engine, cfg), "speaker_names", lambda path: None)(path)
    return [TtsVoiceSpeaker(name=n) for n in names] if names else None


def _piper_installed(cfg=None) -> bool:
    """Piper's own availability check from the registry (its packages: piper-tts and onnxruntime)."""
    from demod_voice.synthesis import registry

    return bool(registry.get("piper", cfg).available(cfg)[0])


def _profile_ready(profile, service, cfg) -> bool:
    """Whether the profile's own engine can speak it now: engine installed, model and reference files present."""
    from demod_voice.errors import DemodError

    if profile.engine == "piper":
        if not _piper_installed(cfg):
            return False
        try:
            return service.router.providers["piper"].resolve(profile.piper_voice or cfg.get("piper.default_voice")
                                                             ).is_file()
        except DemodError:
            return False
    from demod_voice.synthesis import registry

    try:  # another registry engine: its own readiness check for a saved voice, else its availability probe
        engine = registry.get(profile.engine, cfg)
        ready = getattr(engine, "profile_ready", None)
        return bool(ready(profile, cfg)) if ready else bool(engine.available(cfg)[0])
    except DemodError:
        return False


def tts_voices(service, cfg) -> list[TtsVoice]:
    user = cfg.get("wyoming.user")
    piper_entries = service.router.catalog_entries() if _piper_installed(cfg) else []
    languages = {e.name: [e.language] if e.language else [] for e in piper_entries}
    voices = [TtsVoice(name=e.name, attribution=_PIPER, installed=True, version=None,
                       description=f"Piper {e.name}" + (f" ({e.quality})" if e.quality else ""),
                       languages=languages[e.name], speakers=_speakers(e.engine, e.path, cfg)) for e in piper_entries]
    for profile in service.store(user).list():
        if not _profile_ready(profile, service, cfg):
            continue
        languages[profile.name] = [profile.language]
        voices.append(TtsVoice(name=profile.name, attribution=_ATTRIBUTION, installed=True, version=None,
                               description=f"cloned voice ({profile.engine}) of {user}"
                                           + ("" if profile.reference else ", no reference yet"),
                               languages=[profile.language]))
    if service.rvc_available():
        from demod_voice.synthesis import registry

        bases = [b for b in cfg.get("wyoming.rvc_after") or [cfg.get("piper.default_voice")] if b in languages]
        for rvc in registry.converter().registered_voices(cfg):
            for base in bases:
                voices.append(TtsVoice(name=f"{base}{CHAIN}{rvc.name}", attribution=_ATTRIBUTION, installed=True,
                                       version=None, description=f"{base} converted to RVC voice {rvc.name}",
                                       languages=languages.get(base, [])))
    return voices


def asr_models(cfg) -> list[AsrModel]:
    """The configured Whisper model and every other registry Whisper model, each only when its folder is in place."""
    from demod_voice import stt

    return [AsrModel(name=name, attribution=_WHISPER, installed=True, version=None,
                     description=f"Whisper {path.name}", languages=languages)
            for name, path, languages in stt.installed_models(cfg)]


def build(service, cfg) -> Info:
    """The describe answer: a TTS program when a voice can speak, an ASR program when a Whisper model can load."""
    tts, asr = [], []
    voices = tts_voices(service, cfg)
    if voices:
        tts.append(TtsProgram(name="demod-voice", attribution=_ATTRIBUTION, installed=True, version=__version__,
                              description="Cloned and Piper voices (XTTS, Piper, RVC) with router fallback",
                              voices=voices, supports_synthesize_streaming=True))
    models = asr_models(cfg) if not needs.missing("stt") else []
    if models:
        asr.append(AsrProgram(name="demod-voice-whisper", attribution=_WHISPER, installed=True, version=__version__,
                              description="Whisper speech-to-text (faster-whisper)", models=models,
                              supports_transcript_streaming=False))
    return Info(tts=tts, asr=asr)
