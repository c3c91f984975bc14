"""The toy engine's plugin: everything the program asks of an engine, for a tiny formant synthesizer.

Registered by one config line, ``engines: {modules: {toy: tests.engine_plugin.toy.plugin}}``; no file of
demod_voice names it. Each sentence becomes a vowel-like buzz (harmonics of 110 Hz shaped by two formants),
0.06 s per character: deterministic, so every front end must give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demod_voice.audio import Audio
from demod_voice.errors import InputError
from demod_voice.synthesis.contract import Handle
from demod_voice.synthesis.jobs import TtsRunner

NAME = "toy"
KIND = "tts"
SECTION = "toy"
OPTION_KEYS: tuple[str, ...] = ()
MODELS: tuple[str, ...] = ()
COMMANDS: tuple[str, ...] = ()
VOICE = "toy-voice"
RATE = 16000


@dataclass(frozen=True)
class ToyOptions:
    """Built once per request: the pitch follows the speed."""

    f0: float = 110.0
    seconds_per_char: float = 0.06


def options(request, cfg) -> ToyOptions:
    if request.references:
        raise InputError("the toy engine takes no reference audio")
    speed = float(request.speed or 1.0)
    return ToyOptions(seconds_per_char=0.06 / speed)


class Formants:
    """The toy's "model": the gain of each harmonic of ``f0`` through two formants (built once, then reused)."""

    def __init__(self, f0: float):
        import numpy as np

        self.f0 = f0
        self.gains = [(k * f0, np.exp(-(((k * f0 - 500.0) / 150.0) ** 2))
                       + 0.5 * np.exp(-(((k * f0 - 1500.0) / 250.0) ** 2))) for k in range(1, 30)]
        self.nbytes = 29 * 16

    def buzz(self, sentence: str, seconds_per_char: float) -> Audio:
        import numpy as np

        t = np.arange(int(len(sentence) * seconds_per_char * RATE)) / RATE
        wave = np.zeros_like(t)
        for f, gain in self.gains:
            wave += gain * np.sin(2 * np.pi * f * t)
        envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02) if len(t) else t
        return Audio((0.3 * wave * envelope / max(1e-9, np.abs(wave).max())).astype(np.float32), RATE)


class ToyHandle(Handle):
    """The engine contract (``synthesis.contract.Engine``): ``Handle`` gives ``self.model`` and ``unload()``."""

    def condition(self, references) -> None:
        return None  # one built-in voice: nothing to condition on (``options()`` refuses reference audio)

    def synthesize(self, text: str, conditioning, options: ToyOptions) -> Iterator[Audio]:
        from demod_voice import text as text_mod

        for sentence in text_mod.split_sentences(text):
            yield self.model.buzz(sentence, options.seconds_per_char)


def load(plan: ToyOptions, cfg, device: str | None = None) -> ToyHandle:
    """Through the one model manager, keyed by what the model is made of (so it shows in /api/engines)."""
    from demod_voice.synthesis.manager import MODELS

    return ToyHandle(MODELS.get(NAME, ("formants", plan.f0), lambda: Formants(plan.f0), device="cpu",
                                label="formants"))


def synthesize(request, cfg, device: str | None = None, plan: ToyOptions | None = None) -> Iterator[Audio]:
    """``load``, ``condition``, ``synthesize``: what every plugin's ``synthesize`` is."""
    from demod_voice import text as text_mod

    plan = plan or options(request, cfg)
    text = text_mod.require_text(request.text)
    engine = load(plan, cfg, device)
    yield from engine.synthesize(text, engine.condition(request.references), plan)


def identity(request, cfg) -> dict:
    return {"toy": 1}


def available(cfg=None) -> tuple[bool, str]:
    return True, ""


def health(cfg) -> tuple[bool, str, dict]:
    return True, "toy formant synthesizer (no model)", {"voice": VOICE}


class Provider:
    """The router's view: one catalog voice, and candidates that run ``synthesize``."""

    def __init__(self, cfg, name: str = NAME):
        self.cfg, self.name = cfg, name

    def entries(self) -> list:
        from demod_voice.catalog import VoiceEntry

        return [VoiceEntry(name=VOICE, engine=self.name, language="en", sample_rate=RATE, path=__file__)]

    def resolve(self, name: str) -> Path:
        if name != VOICE:
            raise InputError(f"unknown toy voice '{name}'")
        return Path(__file__)

    def default_voice(self) -> str:
        return VOICE

    def prepare(self, req, voice):
        from demod_voice.synthesis import Request
        from demod_voice.synthesis.requests import Candidate

        request = Request(text=req.text, speed=req.speed)
        plan = options(request, self.cfg)
        return Candidate(self.name, "toy-1", "cpu", lambda: synthesize(request, self.cfg, "cpu", plan))

    def status(self) -> dict:
        return {"installed": True}


JOB_OPTIONS: dict = {}
INFER_FROM: tuple[str, ...] = ()
INFER_RANK = 99


def job_request(job):
    from demod_voice.synthesis import Request

    return Request(text=job.text)


def validate_job(job, cfg) -> dict:
    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    return identity(job_request(job), cfg)


def group_key(job) -> tuple:
    return (NAME,)


class Runner(TtsRunner):
    engine = NAME
    request = staticmethod(job_request)
