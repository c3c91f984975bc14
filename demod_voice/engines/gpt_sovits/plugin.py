"""GPT-SoVITS: request + config -> a validated api_v2 /tts call -> audio from the user's GPT-SoVITS server.

The reference is one audio file: the profile's chosen sample (its first, when several are chosen), or the
request's reference file. ``prompt_text`` is what that sample says: the sample's transcript when it has one,
else Whisper's (``captions.whisper_model`` / ``stt.model``), remembered per file. A profile may carry its own
fine-tuned weights in ``<profile>/gpt-sovits/`` (one ``*.ckpt`` GPT and one ``*.pth`` SoVITS file); they are
set with ``/set_gpt_weights`` and ``/set_sovits_weights`` before its requests.

The server runs outside this process (``demod-voice gpt-sovits start``); when it is down the router falls
back (``engine error``, the reason in the audit log) like for any engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demod_voice import config as config_mod
from demod_voice.audio import Audio
from demod_voice.errors import InputError
from demod_voice.synthesis.contract import Client, build_options, option_keys
from demod_voice.synthesis.jobs import TtsRunner, chain_identity, chain_request, schema_options


@dataclass(frozen=True)
class GptSovitsOptions:
    """The sampling settings of one request (``gpt_sovits.*`` schema keys, api_v2's /tts names)."""

    top_k: int
    top_p: float
    temperature: float
    speed_factor: float


NAME = "gpt-sovits"
KIND = "tts"
SECTION = "gpt_sovits"
OPTION_KEYS = option_keys(GptSovitsOptions)
MODELS: tuple[str, ...] = ()  # the user's own GPT-SoVITS install holds its models
COMMANDS = ("demod_voice.engines.gpt_sovits.cli",)

_TRANSCRIPTS: dict[tuple, str] = {}
_TRANSCRIPTS_LOCK = threading.Lock()


def available(cfg=None) -> tuple[bool, str]:
    """Nothing to import here (it is a server); given a config, whether its api_v2 server answers now."""
    if cfg is None:
        return True, ""
    from demod_voice.engines.gpt_sovits import process as gpt_sovits

    url = gpt_sovits.server_url(cfg)
    if gpt_sovits.answers(url, timeout=0.5):
        return True, ""
    return False, f"no api_v2 server answers at {url} ('demod-voice gpt-sovits start --install-dir DIR')"


def replica_available(cfg) -> tuple[bool, str]:
    """For ``serve --ray``: with a managed install a replica starts its own api_v2, so the install must be
    whole; with ``gpt_sovits.url`` that server must answer, as without Ray."""
    from demod_voice.engines.gpt_sovits import process as gpt_sovits
    from demod_voice.engines.gpt_sovits import replica

    if not replica.managed(cfg):
        return available(cfg)
    try:
        gpt_sovits.check_install(Path(cfg.get("gpt_sovits.install_dir")).expanduser(), cfg.get("gpt_sovits.config"))
    except InputError as exc:
        return False, exc.message
    return True, ""


def replica_server(cfg):
    """For ``serve --ray``: this replica's own api_v2 (``replica.OwnServer``) with a managed install, else None."""
    from demod_voice.engines.gpt_sovits import replica

    return replica.OwnServer(cfg) if replica.managed(cfg) else None


def health(cfg) -> tuple[bool, str, dict]:
    """For ``health``: is the api_v2 server up (not required: the router falls back without it)."""
    from demod_voice.engines.gpt_sovits import process as gpt_sovits

    report = gpt_sovits.status(cfg)
    if report["answers"]:
        return True, f"api_v2 answers at {report['url']}" + (f" (pid {report['pid']})" if report["running"] else ""), report
    return False, f"no api_v2 server at {report['url']} ('demod-voice gpt-sovits start --install-dir DIR')", report


@dataclass
class GptSovitsPlan:
    url: str
    reference: Path
    prompt_text: str | None
    language: str
    values: GptSovitsOptions
    streaming: bool
    gpt_weights: str = ""
    sovits_weights: str = ""


def _transcript(reference: Path, cfg, language: str | None) -> str:
    """What the reference says, from Whisper, remembered per file (path, size, mtime)."""
    from demod_voice import audio as audio_mod
    from demod_voice.alignment import words_of_speech

    stat = reference.stat()
    key = (str(reference), stat.st_size, stat.st_mtime_ns)
    with _TRANSCRIPTS_LOCK:
        if key in _TRANSCRIPTS:
            return _TRANSCRIPTS[key]
    text = " ".join(w.word for w in words_of_speech(audio_mod.read(reference, what="reference audio"), None, cfg,
                                                    language)).strip()
    if not text:
        raise InputError(f"Whisper heard no words in the reference {reference.name}",
                         hint="give the sample a transcript, or choose a sample with speech")
    with _TRANSCRIPTS_LOCK:
        _TRANSCRIPTS[key] = text
    return text


def options(request, cfg, *, prompt_text: str | None = None, weights: tuple[str, str] = ("", "")) -> GptSovitsPlan:
    """Check the reference, the language and the options; no network, no Whisper yet."""
    from demod_voice.engines.gpt_sovits import process as gpt_sovits

    speed = {"speed_factor": config_mod.check_option("gpt_sovits.speed_factor", request.speed)} \
        if request.speed is not None else {}
    values = build_options(GptSovitsOptions, SECTION, request.options, cfg, **speed)
    if not request.references:
        raise InputError("GPT-SoVITS needs a reference audio file", hint="give reference audio, or a saved voice")
    reference = Path(request.references[0]).expanduser()
    if reference.is_dir():
        raise InputError(f"GPT-SoVITS takes one reference file, not a folder: {reference}")
    if not reference.is_file():
        raise InputError(f"reference audio not found: {reference}")
    language = gpt_sovits.api_language(request.language or cfg.get("xtts.language"))
    streaming = request.stream or cfg.get("gpt_sovits.streaming")
    return GptSovitsPlan(gpt_sovits.server_url(cfg), reference.resolve(), prompt_text, language, values, streaming,
                         *weights)


@dataclass(frozen=True)
class Prompt:
    """What api_v2 speaks with (the contract's conditioning): the reference file, what it says, its language."""

    reference: str
    text: str
    language: str


class ApiV2Client(Client):
    """The engine contract (``synthesis.contract.Engine``) over the user's api_v2 server: a client bound to its
    URL and to the bounds of every call (deadline, bytes read, seconds decoded). Nothing loads here."""

    what = "GPT-SoVITS"

    def __init__(self, url: str, cfg):
        super().__init__()
        self.url = url
        self.cfg = cfg
        self.timeout_s = cfg.get("gpt_sovits.timeout_s")
        self.max_bytes = int(cfg.get("router.outbound_max_mb") * 1024 * 1024)
        self.max_seconds = cfg.get("router.outbound_max_audio_s")

    def condition(self, references: GptSovitsPlan) -> Prompt:
        """The plan's reference and its transcript (the sample's own, else Whisper's, remembered per file)."""
        text = references.prompt_text or _transcript(references.reference, self.cfg, references.language)
        return Prompt(str(references.reference), text, references.language)

    def synthesize(self, text: str, conditioning: Prompt, options: GptSovitsPlan) -> Iterator[Audio]:
        """One ``/tts`` call: one chunk (a whole WAV), or chunks as api_v2 streams them."""
        from demod_voice.engines.gpt_sovits import process as gpt_sovits
        from demod_voice.errors import EngineError

        self.check_open()
        o = options.values
        call = gpt_sovits.TtsCall(text=text, text_lang=options.language, ref_audio_path=conditioning.reference,
                                  prompt_text=conditioning.text, prompt_lang=conditioning.language,
                                  streaming_mode=options.streaming, gpt_weights=options.gpt_weights,
                                  sovits_weights=options.sovits_weights, top_k=o.top_k, top_p=o.top_p,
                                  temperature=o.temperature, speed_factor=o.speed_factor)
        produced = False
        for chunk in gpt_sovits.synthesize(self.url, call, self.timeout_s, self.max_bytes, self.max_seconds):
            produced = produced or bool(len(chunk.samples))
            yield chunk
        if not produced:
            raise EngineError("GPT-SoVITS sent no audio")


def load(plan: GptSovitsPlan, cfg, device: str | None = None) -> ApiV2Client:
    """The contract's ``load``: a client bound to the plan's server (the device is the server's business)."""
    return ApiV2Client(plan.url, cfg)


def synthesize(request, cfg, device: str | None = None, plan: GptSovitsPlan | None = None) -> Iterator[Audio]:
    from demod_voice import text as text_mod

    plan = plan or options(request, cfg)
    text = text_mod.require_text(request.text)
    engine = load(plan, cfg, device)
    chunks = engine.synthesize(text, engine.condition(plan), plan)
    if request.words:
        from demod_voice import alignment

        whisper = alignment.whisper_model_name(cfg)
        chunks = alignment.with_words(chunks, request.text, lambda: alignment.WhisperAligner(whisper, plan.language))
    yield from chunks


def identity(request, cfg) -> dict:
    from demod_voice.paths import file_identity

    return {"reference": [file_identity(p) for p in request.references[:1]]}


def profile_weights(profile) -> tuple[str, str]:
    """``<profile>/gpt-sovits/*.ckpt`` and ``*.pth`` (one of each), or empty: the server's current weights."""
    folder = profile.path / "gpt-sovits"
    gpt = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
    sovits = sorted(folder.glob("*.pth")) if folder.is_dir() else []
    return (str(gpt[0].resolve()) if gpt else "", str(sovits[0].resolve()) if sovits else "")


class Provider:
    """The router's view: a profile's chosen sample (and its transcript) -> a GPT-SoVITS candidate."""

    def __init__(self, cfg, name: str = NAME):
        self.cfg = cfg
        self.name = name

    def prepare(self, req, voice):
        from demod_voice.paths import file_identity
        from demod_voice.synthesis import Request, chain
        from demod_voice.synthesis.requests import REFERENCE_MISSING, Candidate, Fallback

        profile = voice.profile
        if profile is None:
            raise Fallback(REFERENCE_MISSING, f"'{voice.name}' is a catalog voice with no reference audio")
        refs = profile.reference_paths()
        if not refs:
            raise Fallback(REFERENCE_MISSING, f"voice '{profile.name}' has no reference samples chosen")
        if not refs[0].is_file():
            raise Fallback(REFERENCE_MISSING, f"reference sample {refs[0].name} of '{profile.name}' is gone")
        sample_id = refs[0].stem
        transcript = _sample_transcript(profile, sample_id)
        p = req.params
        request = Request(text=req.text, references=refs[:1], language=req.language or profile.language,
                          speed=req.speed, stream=req.stream, words=req.words,
                          options={k: p[k] for k in OPTION_KEYS if p.get(k) is not None})
        weights = profile_weights(profile)
        plan = options(request, self.cfg, prompt_text=transcript or None, weights=weights)
        version = "|".join([plan.url, file_identity(refs[0]), *weights])

        def start() -> Iterator[Audio]:
            return chain.finite(synthesize(request, self.cfg, None, plan=plan), self.name)

        return Candidate(self.name, version, "net", start, request=request, plan=plan)  # the outbound pool: never a CPU worker

    def status(self) -> dict:
        from demod_voice.engines.gpt_sovits import process as gpt_sovits

        url = gpt_sovits.server_url(self.cfg)
        answers = gpt_sovits.answers(url, timeout=0.5)
        return {"installed": True, "available": answers, "server": url, "answers": answers}


def _sample_transcript(profile, sample_id: str) -> str:
    import json

    try:
        data = json.loads((profile.samples_dir / f"{sample_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("transcript") or "").strip() if isinstance(data, dict) else ""


# --- batch jobs: ``text`` in the voice of one ``reference`` file, engine column ``gpt-sovits`` ----------------

JOB_OPTIONS = schema_options("gpt_sovits", OPTION_KEYS)
INFER_FROM: tuple[str, ...] = ()  # reference audio means XTTS unless the job names this engine
INFER_RANK = 50


def job_request(job):
    from demod_voice.synthesis import Request

    return Request(text=job.text, references=list(job.reference[:1]), language=job.language or None,
                   options=dict(job.options), rvc=chain_request(job),
                   words=getattr(job, "captions", None) is not None)


def validate_job(job, cfg) -> dict:
    if not job.text:
        raise InputError("no text to speak", hint="fill the 'text' column")
    if len(job.reference) != 1:
        raise InputError("a GPT-SoVITS job needs exactly one reference file", hint="fill the 'reference' column")
    options(job_request(job), cfg, prompt_text="-")
    return {**identity(job_request(job), cfg), **chain_identity(job, cfg)}


def group_key(job) -> tuple:
    return (NAME, tuple(str(r) for r in job.reference))


class Runner(TtsRunner):
    engine = NAME
    remember_failures = False
    request = staticmethod(job_request)
