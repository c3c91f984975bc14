"""Remote engines: any OpenAI-compatible ``POST /v1/audio/speech`` server, declared in the config.

``router.remotes.<name>: {url, api_key_env, model, voice_map, timeout_s, sample_rate}`` makes ``<name>`` an
engine for chains and tiers (another demod-voice, or a hosted API). The API key is read from the environment
variable ``api_key_env`` names, never from a file, so configs can be shared. The remote's answer (WAV) becomes
float32 ``Audio`` like any local engine's, optionally resampled to ``sample_rate``, and then takes the same
path: the server's cache (keyed by url, model and remote voice), the breaker, the audit log, the encoders.

A remote that cannot be reached, answers with an error or with audio that does not decode is the engine's
failure (``EngineError``): the router falls back to the next engine and audits why.

This is a *family* in the registry (``FAMILY = True``): one module, as many engines as the config names.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from demod_voice.audio import Audio
from demod_voice.errors import ConfigError, EngineError, InputError, UpstreamError
from demod_voice.synthesis.contract import Client
from demod_voice.synthesis.jobs import Option

_LOGGER = logging.getLogger(__name__)
FAMILY = True
KIND = "tts"
FIELDS = {"url", "api_key_env", "model", "voice_map", "timeout_s", "sample_rate"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RemoteSettings:
    """One ``router.remotes.<name>`` entry, validated."""

    name: str
    url: str
    api_key_env: str = ""
    model: str = "tts-1"
    voice_map: dict = field(default_factory=dict)
    timeout_s: float = 60.0
    sample_rate: int | None = None

    @classmethod
    def parse(cls, name: str, raw) -> RemoteSettings:
        where = f"router.remotes.{name}"
        if not _NAME.match(str(name)):
            raise ConfigError(f"config key 'router.remotes' has a bad engine name '{name}'",
                              hint="use letters, digits, '.', '_' or '-'")
        if not isinstance(raw, dict):
            raise ConfigError(f"config key '{where}' must be a mapping", hint="give at least {url: http://host:port}")
        unknown = set(raw) - FIELDS
        if unknown:
            raise ConfigError(f"config key '{where}' has unknown field(s) {', '.join(sorted(unknown))}",
                              hint="known: " + ", ".join(sorted(FIELDS)))
        url = raw.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(f"config key '{where}.url' must be an http(s) URL, found {url!r}",
                              hint="e.g. http://127.0.0.1:8000 (the /v1/audio/speech path is added)")
        key_env = raw.get("api_key_env") or ""
        if not isinstance(key_env, str) or (key_env and not _ENV.match(key_env)):
            raise ConfigError(f"config key '{where}.api_key_env' must name an environment variable, found {key_env!r}",
                              hint="the key itself never goes into the config")
        model = raw.get("model", "tts-1")
        voice_map = raw.get("voice_map") or {}
        if not isinstance(model, str) or not model:
            raise ConfigError(f"config key '{where}.model' must be a string")
        if not isinstance(voice_map, dict) or not all(isinstance(v, str) for v in voice_map.values()):
            raise ConfigError(f"config key '{where}.voice_map' must map voice names to remote voice names")
        timeout = raw.get("timeout_s", 60.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0.1 <= timeout <= 3600:
            raise ConfigError(f"config key '{where}.timeout_s' must be a number of seconds in 0.1..3600, found {timeout!r}")
        rate = raw.get("sample_rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 192000):
            raise ConfigError(f"config key '{where}.sample_rate' must be a rate in 8000..192000 Hz, found {rate!r}")
        return cls(str(name), url.rstrip("/"), key_env, model, {str(k): v for k, v in voice_map.items()},
                   float(timeout), rate)

    @property
    def endpoint(self) -> str:
        return self.url + ("" if self.url.endswith("/v1/audio/speech") else "/v1/audio/speech")


def instances(cfg) -> dict:
    """One ``RemoteEngine`` per ``router.remotes`` entry; a name that is a built-in engine is refused."""
    from demod_voice.synthesis.registry import ENGINES

    out = {}
    for name, raw in (cfg.get("router.remotes") or {}).items():
        if name in ENGINES:
            raise ConfigError(f"config key 'router.remotes.{name}' uses a built-in engine's name",
                              hint="name the remote something else, e.g. remote-" + str(name))
        out[name] = RemoteEngine(RemoteSettings.parse(name, raw))
    return out


@dataclass
class RemotePlan:
    """A validated remote request: where, what, in which voice, with which key."""

    settings: RemoteSettings
    voice: str
    speed: float | None
    max_bytes: int = 64 << 20
    """the largest answer read (``router.outbound_max_mb``)"""
    max_seconds: float = 600.0
    """the longest audio decoded (``router.outbound_max_audio_s``)"""


class RemoteEngine:
    """One remote, with the registry's engine attributes (adapter, probe, provider, batch section)."""

    KIND = KIND
    SECTION = "router.remotes"
    OPTION_KEYS: tuple[str, ...] = ()
    MODELS: tuple[str, ...] = ()
    COMMANDS: tuple[str, ...] = ()
    JOB_OPTIONS = {"speed": Option("xtts.speed")}
    INFER_FROM: tuple[str, ...] = ()  # only chosen by name (``engine`` column, chains, tiers)
    INFER_RANK = 99

    def __init__(self, settings: RemoteSettings):
        self.settings = settings
        self.NAME = settings.name

    # -- adapter --
    def remote_voice(self, voice: str) -> str:
        return self.settings.voice_map.get(voice, voice)

    def options(self, request, cfg) -> RemotePlan:
        from demod_voice import config as config_mod

        if request.references:
            raise InputError(f"remote engine '{self.NAME}' takes a voice name, not reference audio",
                             hint="save the voice on the remote and name it, or use a local engine")
        unknown = set(request.options) - {"speed"}
        if unknown:
            raise InputError(f"remote engine '{self.NAME}' takes no option(s) {', '.join(sorted(unknown))}",
                             hint="only speed is sent to a remote")
        speed = request.options.get("speed", request.speed)
        speed = config_mod.check_option("xtts.speed", speed) if speed is not None else None
        voice = request.voice or cfg.get("piper.default_voice")
        return RemotePlan(self.settings, self.remote_voice(voice), speed,
                          int(cfg.get("router.outbound_max_mb") * 1024 * 1024), cfg.get("router.outbound_max_audio_s"))

    def key(self) -> str | None:
        name = self.settings.api_key_env
        if not name:
            return None
        value = os.environ.get(name, "")
        if not value:
            raise EngineError(f"remote engine '{self.NAME}': environment variable {name} is not set",
                              hint=f"export {name}=<the remote's API key>")
        return value

    def fetch(self, text: str, plan: RemotePlan) -> Audio:
        """One ``/v1/audio/speech`` call -> float32 audio (resampled when the remote asks for a rate)."""
        try:
            import httpx
        except ImportError:
            from demod_voice.errors import NotAvailableError, install_hint

            raise NotAvailableError(f"remote engine '{self.NAME}' needs httpx", hint=install_hint("server")) from None

        from demod_voice import audio as audio_mod

        body = {"model": plan.settings.model, "input": text, "voice": plan.voice, "response_format": "wav"}
        if plan.speed is not None:
            body["speed"] = plan.speed
        key = self.key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        from demod_voice import outbound

        where = f"remote engine '{self.NAME}'"  # the URL is an internal detail: audit and admins only
        url = plan.settings.url
        try:
            response = outbound.request("POST", plan.settings.endpoint, what=where, timeout_s=plan.settings.timeout_s,
                                        max_bytes=plan.max_bytes, json=body, headers=headers)
        except outbound.OutboundTimeout:
            raise TimeoutError(f"{where} gave no whole answer within its time") from None
        except outbound.TooLarge as exc:
            raise UpstreamError(f"{where} sent an answer larger than the limit",
                                hint="router.outbound_max_mb bounds what a remote may send",
                                internal=f"{url}: {exc.message}") from None
        except httpx.HTTPError as exc:
            raise EngineError(f"{where} cannot be reached ({type(exc).__name__})",
                              hint="start it, or check router.remotes") from None
        if response.status_code != 200:
            said = _error_text(response)
            _LOGGER.warning("%s (%s) answered HTTP %d: %s", where, url, response.status_code, said)
            raise UpstreamError(f"{where} answered HTTP {response.status_code}",
                                hint="check the remote's voice, model and key (its own message is in the audit log)",
                                internal=f"{url} answered HTTP {response.status_code}: {said}")
        audio = outbound.decode(response.content, f"audio from {where}", plan.max_seconds, internal=url)
        if plan.settings.sample_rate:
            audio = audio_mod.resample(audio, plan.settings.sample_rate)
        return audio

    def load(self, plan: RemotePlan, cfg=None, device: str | None = None) -> RemoteClient:
        """The contract's ``load``: a client bound to this remote (its URL, model, key variable and bounds)."""
        return RemoteClient(self)

    def synthesize(self, request, cfg, device: str | None = None, plan: RemotePlan | None = None) -> Iterator[Audio]:
        """The whole text in one call (the remote splits sentences itself): one chunk."""
        from demod_voice import text as text_mod

        plan = plan or self.options(request, cfg)
        text = text_mod.require_text(request.text)
        client = self.load(plan, cfg, device)
        chunks = client.synthesize(text, client.condition(request.references), plan)
        if request.words:
            from demod_voice import alignment

            whisper = alignment.whisper_model_name(cfg)
            chunks = alignment.with_words(chunks, request.text,
                                          lambda: alignment.WhisperAligner(whisper, request.language))
        yield from chunks

    def identity(self, request, cfg) -> dict:
        s = self.settings
        return {"url": s.url, "model": s.model, "voice": self.remote_voice(request.voice or cfg.get("piper.default_voice")),
                "sample_rate": s.sample_rate}

    # -- probe --
    def available(self, cfg=None) -> tuple[bool, str]:
        """Configured and its key present (the network is not probed here: the breaker learns that)."""
        name = self.settings.api_key_env
        if name and not os.environ.get(name):
            return False, f"environment variable {name} is not set"
        return True, ""

    def health(self, cfg=None) -> tuple[bool, str, dict]:
        """For ``health``: configured and keyed (the remote itself is asked only by requests)."""
        ok, why = self.available(cfg)
        return ok, f"remote {self.settings.url}" + (f": {why}" if why else ""), {"url": self.settings.url}

    # -- router --
    def Provider(self, cfg, name: str | None = None):  # noqa: N802 (the registry's constructor name)
        return RemoteProvider(self, cfg)

    # -- batch --
    def job_request(self, job):
        from demod_voice.synthesis import Request
        from demod_voice.synthesis.jobs import chain_request

        job_options = dict(job.options)
        return Request(text=job.text, voice=job.model, speed=job_options.pop("speed", None), options=job_options,
                       rvc=chain_request(job), words=getattr(job, "captions", None) is not None)

    def validate_job(self, job, cfg) -> dict:
        from demod_voice.synthesis.jobs import chain_identity

        if not job.text:
            raise InputError("no text to speak", hint="fill the 'text' column")
        self.options(self.job_request(job), cfg)
        return {**self.identity(self.job_request(job), cfg), **chain_identity(job, cfg)}

    def group_key(self, job) -> tuple:
        return (self.NAME, job.model)

    def Runner(self, cfg, device: str):  # noqa: N802 (the registry's constructor name)
        from demod_voice.synthesis.jobs import TtsRunner

        runner = TtsRunner(cfg, device)
        runner.engine = self.NAME
        runner.remember_failures = False  # a remote may come back during a run
        runner.request = self.job_request
        return runner


class RemoteClient(Client):
    """The engine contract (``synthesis.contract.Engine``) over one remote: nothing loads here, the remote
    holds its model; the client speaks to it with the remote's settings and the plan's voice."""

    def __init__(self, engine: RemoteEngine):
        super().__init__()
        self.engine = engine
        self.what = f"remote engine '{engine.NAME}'"

    def condition(self, references) -> None:
        """A remote speaks a voice it knows by name (``options()`` refuses reference audio): nothing to send."""
        return None

    def synthesize(self, text: str, conditioning, options: RemotePlan) -> Iterator[Audio]:
        """One ``/v1/audio/speech`` call for the whole text: one chunk."""
        self.check_open()
        audio = self.engine.fetch(text, options)
        if not len(audio.samples):
            raise InputError("the text produced no speech", hint="give words, not only punctuation")
        yield audio


def _error_text(response) -> str:
    """The remote's error message: OpenAI's ``{"error": {"message"}}``, ``{"detail"}``, or the text, shortened."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
        for key in ("detail", "message", "error"):
            if data.get(key):
                return str(data[key])[:200]
    return str(data)[:200]


class RemoteProvider:
    """The router's view of a remote: any resolved voice, by its (mapped) name."""

    def __init__(self, engine: RemoteEngine, cfg):
        self.engine = engine
        self.cfg = cfg
        self.name = engine.NAME

    def prepare(self, req, voice):
        from demod_voice.synthesis import Request, chain
        from demod_voice.synthesis.requests import NOT_INSTALLED, Candidate, Fallback

        ok, why = self.engine.available(self.cfg)
        if not ok:
            raise Fallback(NOT_INSTALLED, f"remote engine '{self.name}': {why}")
        # the name the client asked for ("alloy" means something to a hosted API), unless only the resolved
        # voice's name is mapped in voice_map
        voice_map = self.engine.settings.voice_map
        name = (req.voice or "").strip() or voice.name
        if name not in voice_map and voice.name in voice_map:
            name = voice.name
        request = Request(text=req.text, voice=name, speed=req.speed, language=req.language, words=req.words)
        plan = self.engine.options(request, self.cfg)
        s = self.engine.settings
        version = f"{s.url}|{s.model}|{plan.voice}|{s.sample_rate}"

        def start() -> Iterator[Audio]:
            return chain.finite(self.engine.synthesize(request, self.cfg, None, plan=plan), self.name)

        return Candidate(self.name, version, "net", start, request=request, plan=plan)  # the outbound pool: never a CPU worker

    def status(self) -> dict:
        ok, why = self.engine.available(self.cfg)
        return {"installed": ok, "remote": self.engine.settings.url, **({"problem": why} if why else {})}
