"""Piper jobs: ``text`` spoken by a Piper ``voice`` (a name from 'voices list' or a .onnx path)."""

from __future__ import annotations

from pathlib import Path

from demod_voice.audio import Audio
from demod_voice.batch.adapters import Option, file_identity
from demod_voice.captions import join
from demod_voice.errors import InputError

OPTIONS = {
    "speed": Option(float, "speaking rate (the inverse of length_scale)", min=0.1, max=10.0),
    "length_scale": Option(float, "phoneme length (>1 slower)", min=0.05, max=10.0),
    "noise_scale": Option(float, "generator noise (0 = deterministic)", min=0.0, max=5.0),
    "noise_w": Option(float, "phoneme width noise (0 = deterministic)", min=0.0, max=5.0),
    "volume": Option(float, "volume multiplier", min=0.0, max=10.0),
    "sentence_silence": Option(float, "seconds of silence after each sentence", min=0.0, max=10.0),
}


_RESOLVED: dict[tuple[str, int], Path] = {}


def _resolve(model: str, cfg) -> Path:
    """Voice name or path -> .onnx, remembered so a file of 10 000 lines scans the catalog once per voice."""
    from demod_voice import catalog

    key = (model, id(cfg))
    if key not in _RESOLVED:
        _RESOLVED[key] = catalog.resolve_piper_model(model, cfg).resolve()
    return _RESOLVED[key]


def _default_voice(job, cfg) -> str:
    return job.model or cfg.get("piper.default_voice")


def validate(job, cfg) -> dict:
    """The voice resolves, its config is readable, the speaker exists, the text is there."""
    from demod_voice.engines.piper import PiperVoiceConfig, config_path_for

    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    if job.reference:
        raise InputError("Piper jobs take a voice, not reference audio",
                         hint="drop 'reference', or set engine to xtts")
    if "speed" in job.options and "length_scale" in job.options:
        raise InputError("'speed' and 'length_scale' set the same thing; give only one")
    model_path = _resolve(_default_voice(job, cfg), cfg)
    config_path = config_path_for(model_path)
    if config_path is None:
        raise InputError(f"voice config missing for {model_path.name}: expected {model_path}.json")
    voice_config = PiperVoiceConfig.read(config_path)
    if job.speaker:
        _check_speaker(job.speaker, voice_config, model_path)
    job.model = str(model_path)
    return {"model": file_identity(model_path), "config": file_identity(config_path)}


def _check_speaker(speaker: str, voice_config, model_path: Path) -> None:
    if voice_config.num_speakers <= 1:
        raise InputError(f"voice {model_path.stem} has a single speaker; speaker '{speaker}' cannot be used",
                         hint="leave 'speaker' empty")
    if speaker in voice_config.speaker_id_map:
        return
    try:
        index = int(speaker)
    except ValueError:
        raise InputError(f"unknown speaker '{speaker}' for voice {model_path.stem}") from None
    if not 0 <= index < voice_config.num_speakers:
        raise InputError(f"speaker {index} is out of range for voice {model_path.stem}",
                         hint=f"use 0-{voice_config.num_speakers - 1}")


def group_key(job) -> tuple:
    return ("piper", job.model)


class Runner:
    """Keeps the Piper voices it has used loaded (through the engine's process-wide cache)."""

    def __init__(self, cfg, device: str):
        self.cfg = cfg
        self.device = device

    def run(self, job) -> Audio:
        from demod_voice.engines import piper

        engine = piper.load(job.model, self.device)
        opts = job.options
        cfg = self.cfg
        length_scale = 1.0 / opts["speed"] if "speed" in opts else opts.get("length_scale", cfg.get("piper.length_scale"))
        options = piper.PiperOptions(
            speaker_id=engine.speaker_id(job.speaker or None),
            length_scale=length_scale,
            noise_scale=opts.get("noise_scale", cfg.get("piper.noise_scale")),
            noise_w=opts.get("noise_w", cfg.get("piper.noise_w")),
            volume=opts.get("volume", cfg.get("piper.volume")),
            sentence_silence=opts.get("sentence_silence", cfg.get("piper.sentence_silence")),
        )
        chunks = list(engine.synthesize(job.text, options, words=job.captions is not None))
        if not chunks:
            raise InputError("the text produced no speech", hint="give words, not only punctuation")
        return join(chunks)
