"""Piper: request + config -> validated ``PiperOptions`` -> the cached engine of the chosen backend.

Text is split into sentences by ``demod_voice.text.split_sentences`` (the splitter XTTS uses too)
before it reaches Piper, and sentences longer than ``MAX_SPOKEN_CHARS`` once read aloud are split again
at commas or word boundaries. Piper's network works on a whole sentence at once, with memory growing with
the length of its audio, so this bound keeps memory flat whatever the length of the text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demod_voice import config as config_mod
from demod_voice.audio import Audio
from demod_voice.errors import InputError

#: Longest piece of text handed to Piper at once, in ``text.spoken_length`` characters (digits count as
#: the words they become). Piper's decoder holds the whole piece's audio in its upsampling layers, so a
#: run's memory follows the length of its speech (measured with the Joe voice, peak RSS of a process
#: speaking one sentence: 155 characters of prose 414 MB, 240 -> 524 MB, 327 -> 615 MB; 248 characters of
#: number-heavy text, 44 s of speech, 1 460 MB). 300 keeps a piece under ~600 MB and leaves ordinary
#: sentences whole, as raw Piper speaks them; only run-on text (no sentence end for 300 characters, or
#: numbers that read long) is split, at a comma or a word boundary. It was 150, which split ordinary long
#: sentences too (each of bench/server.py's 163-character sentences became two runs).
MAX_SPOKEN_CHARS = 300

_RESOLVED: dict[tuple[str, int], Path] = {}
_RESOLVED_LOCK = threading.Lock()


@dataclass(frozen=True)
class PiperPlan:
    """Everything a Piper synthesis needs, validated: which file, which backend, which options."""

    model_path: Path
    backend: str
    options: object  # engines.piper.PiperOptions


def resolve_model(name: str, cfg) -> Path:
    """Voice name or path -> ``.onnx``, remembered per config (a batch of 10 000 lines scans once per voice)."""
    from demod_voice import catalog

    key = (name, id(cfg))
    with _RESOLVED_LOCK:
        path = _RESOLVED.get(key)
    if path is None:
        path = catalog.resolve_piper_model(name, cfg).resolve()
        with _RESOLVED_LOCK:
            _RESOLVED[key] = path
    return path


def options(request, cfg) -> PiperPlan:
    """Validate the request against the schema and the voice's own config; loads no engine."""
    from demod_voice.engines.piper import PiperOptions, PiperVoiceConfig, check_voice_files

    if request.references:
        raise InputError("Piper takes a voice, not reference audio", hint="drop the reference, or use XTTS")
    model_path = resolve_model(request.voice or cfg.get("piper.default_voice"), cfg)
    voice_config = PiperVoiceConfig.read(check_voice_files(model_path))
    values = config_mod.section_options("piper", config_mod.PIPER_SYNTHESIS_KEYS, request.options, cfg)
    backend = config_mod.check_option("piper.backend", request.backend) if request.backend else cfg.get("piper.backend")
    if request.speed is not None:
        speed = config_mod.check_option("xtts.speed", request.speed, "request")  # the one speed range
        length = values["length_scale"] if values["length_scale"] is not None else voice_config.length_scale
        values["length_scale"] = config_mod.check_option("piper.length_scale", length / speed, "request")
    speaker = voice_config.speaker_id(request.speaker, model_path.stem)
    return PiperPlan(model_path, backend, PiperOptions(speaker_id=speaker, **{
        "length_scale": values["length_scale"], "noise_scale": values["noise_scale"], "noise_w": values["noise_w"],
        "volume": values["volume"], "sentence_silence": values["sentence_silence"]}))


def split_pieces(text: str) -> list[str]:
    """The pieces Piper speaks one run each: sentences, split again past ``MAX_SPOKEN_CHARS`` read aloud."""
    from demod_voice import text as text_mod

    return text_mod.split_sentences(text, max_chars=MAX_SPOKEN_CHARS, measure=text_mod.spoken_length)


def synthesize(request, cfg, device: str | None = None, plan: PiperPlan | None = None) -> Iterator[Audio]:
    """One chunk per sentence (Piper may split a piece further), float32 at the voice's rate."""
    from demod_voice import text as text_mod
    from demod_voice.engines import piper

    plan = plan or options(request, cfg)
    pieces = split_pieces(text_mod.require_text(request.text))
    engine = piper.load(plan.model_path, device or cfg.get("device"), backend=plan.backend,
                        threads=cfg.get("piper.onnx_threads"), spinning=cfg.get("piper.onnx_spinning"),
                        release_ids=cfg.get("piper.arena_release_ids"))
    produced = False
    for piece in pieces:
        for chunk in engine.synthesize(piece, plan.options, words=request.words, continued=produced):
            produced = True
            yield chunk
    if not produced:
        raise InputError("the text produced no speech", hint="give words, not only punctuation")


def identity(request, cfg) -> dict:
    """What the result depends on beyond the request: the voice files (cache keys, batch resume)."""
    from demod_voice.engines.piper import config_path_for
    from demod_voice.paths import file_identity

    model_path = resolve_model(request.voice or cfg.get("piper.default_voice"), cfg)
    return {"model": file_identity(model_path), "config": file_identity(config_path_for(model_path) or model_path)}
