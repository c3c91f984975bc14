"""Layered, validated configuration.

Precedence, lowest first: built-in defaults < user file
(``$XDG_CONFIG_HOME/demod-voice/config.yaml``) < ``--config FILE`` <
``DEMOD_VOICE_*`` environment variables < command-line flags. Mappings merge
deeply. Every value is checked against ``SCHEMA``; an error names the key
path, what was expected and what was found. ``Config.source(key)`` tells where
each effective value came from (``config show`` prints it).

Environment variables map to key paths with ``__`` between levels, e.g.
``DEMOD_VOICE_PIPER__LENGTH_SCALE=1.2`` sets ``piper.length_scale`` and
``DEMOD_VOICE_DEVICE=cpu`` sets ``device``. Values are parsed as YAML scalars.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demod_voice import paths
from demod_voice.errors import ConfigError, InputError
from demod_voice.setting import Setting, engine_sections

ENV_PREFIX = "DEMOD_VOICE_"


S = Setting

#: Each engine's section, declared beside it (``engines/<name>/settings.py``; ``setting.engine_sections``).
_ENGINE_SETTINGS = engine_sections()
_ENGINE_SECTIONS: dict[str, dict[str, Setting]] = {section: m.SETTINGS for section, m in _ENGINE_SETTINGS.items()}
#: Pitch extraction methods RVC knows (``pm`` needs the GPL extra praat-parselmouth).
F0_METHODS = _ENGINE_SETTINGS["rvc"].F0_METHODS
#: XTTS sampling settings a request may override (all under ``xtts.``).
XTTS_SAMPLING_KEYS = ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty", "speed")
#: Piper synthesis settings a request may override (all under ``piper.``).
PIPER_SYNTHESIS_KEYS = ("length_scale", "noise_scale", "noise_w", "sentence_silence", "volume")
#: GPT-SoVITS sampling settings a request may override (all under ``gpt_sovits.``), api_v2's /tts names.
GPT_SOVITS_KEYS = ("top_k", "top_p", "temperature", "speed_factor")
#: StyleTTS2 synthesis settings a request may override (all under ``styletts2.``).
STYLETTS2_KEYS = ("alpha", "beta", "diffusion_steps", "embedding_scale", "speed")
#: RVC conversion settings a request may override (all under ``rvc.``).
RVC_CONVERSION_KEYS = ("pitch", "f0_method", "index_rate", "filter_radius", "rms_mix_rate", "protect", "resample_sr")

#: The complete schema. Each section belongs to one capability; keys not listed
#: here are rejected with a "did you mean" hint.
SCHEMA: dict[str, Any] = {
    "device": S("str", "auto", "where engines run: auto (GPU if available), cpu or gpu", choices=("auto", "cpu", "gpu")),
    "log_level": S("str", "warning", "log level on stderr", choices=("debug", "info", "warning", "error")),
    "paths": {
        "data_dir": S("path", None, "user data (voices, profiles, models); default $XDG_DATA_HOME/demod-voice", nullable=True),
        "cache_dir": S("path", None, "caches (latents, audio); default $XDG_CACHE_HOME/demod-voice", nullable=True),
        "voices": S("list", [], "extra folders searched for Piper .onnx voices"),
        "models": S("list", [], "extra folders searched for models (XTTS, RVC, auxiliary weights)"),
    },
    "output": {
        "format": S("str", "wav", "default output format when it cannot be inferred", choices=("wav", "flac", "ogg", "opus", "mp3", "aac", "pcm")),
    },
    "piper": _ENGINE_SECTIONS["piper"],
    "xtts": _ENGINE_SECTIONS["xtts"],
    "styletts2": _ENGINE_SECTIONS["styletts2"],
    "models": {
        "registry": S("list", [], "extra model registry files (YAML/JSON, same fields as the built-in entries)"),
        "offline": S("bool", False, "never use the network: 'models pull' and hub downloads refuse (env DEMOD_VOICE_OFFLINE=1)"),
    },
    "rvc": _ENGINE_SECTIONS["rvc"],
    "voices": {
        "max_sample_s": S("float", 60.0, "longest recording accepted as a voice sample; longer ones are refused "
                                         "while they are decoded", min=1.0, max=3600.0),
        "max_per_user": S("int", 50, "saved voices one user may have (server: 429 beyond it)", min=1),
        "max_samples_per_voice": S("int", 100, "samples one saved voice may hold (server: 429 beyond it)", min=1),
        "max_user_mb": S("float", 500.0, "disk space one user's saved voices may take (server: 413 beyond it)",
                         min=0.001),
        "max_description_chars": S("int", 1000, "longest voice description", min=0),
        "max_field_chars": S("int", 200, "longest other text field of a voice or sample (language, Piper voice, "
                                         "transcript, file name)", min=1),
    },
    "dataset": {
        "whisper_model": S("str", None, "faster-whisper model path or name for --transcribe (unset: stt.model)", nullable=True),
        "min_total_seconds": S("float", 600.0, "piper-preprocess warns (errors with --strict) below this much kept audio", min=0.0),
    },
    "training": {
        "batch_size": S("int", 32, "utterances per training step of 'train piper' (lower it when the GPU runs out "
                                   "of memory)", min=1, max=1024),
        "checkpoint_every": S("int", 500, "training steps between checkpoints (last.ckpt; Ctrl-C and cancel also "
                                          "save one)", min=1),
        "progress_every_s": S("float", 10.0, "seconds between the one-line progress records off a terminal",
                              min=0.0, max=86400.0),
        "accelerator": S("str", "auto", "where 'train piper' runs: auto (a GPU when there is one), cpu or gpu",
                         choices=("auto", "cpu", "gpu")),
        "ready_fraction": S("float", 0.8, "Piper readiness: the part of dataset.min_total_seconds of good audio "
                                          "that counts as ready", min=0.0, max=1.0),
        "min_quality": S("float", 0.8, "the quality score (0-1) a sample needs to count as good for training and "
                                       "as a GPT-SoVITS reference", min=0.0, max=1.0),
        "rvc_min_seconds": S("float", 600.0, "RVC readiness: seconds of good audio (about 10 minutes)", min=0.0),
    },
    "captions": {
        "whisper_model": S("str", None, "faster-whisper model that aligns the text to XTTS/RVC audio for word timings "
                           "(default: dataset.whisper_model, then stt.model)", nullable=True),
    },
    "batch": {
        "workers": S("int", 1, "worker processes for 'batch' (each loads its engines once)", min=1, max=256),
        "max_text_chars": S("int", 50000, "longest text of one job (its audio is held whole in a worker: "
                                          "about an hour of speech, ~600 MB)", min=1),
    },
    "cache": {
        "enabled": S("bool", False, "use the audio cache for CLI commands (the server enables it itself)"),
        "max_size_mb": S("int", 2048, "audio cache size limit (LRU eviction)", min=1),
        "dir": S("path", None, "audio cache folder; default <cache_dir>/audio", nullable=True),
    },
    "server": {
        "host": S("str", "127.0.0.1", "listen address"),
        "port": S("int", 5002, "listen port", min=1, max=65535),
        "cache": S("bool", True, "use the audio cache in the server"),
        "preload": S("bool", False, "load the default Piper voice at start instead of on first use"),
        "cpu_workers": S("int", 2, "CPU engine jobs run at once (bounded pool)", min=1, max=256),
        "max_text_chars": S("int", 4096, "longest accepted input text", min=1),
        "max_upload_mb": S("float", 20.0, "largest accepted upload", min=0.001),
        "max_body_bytes": S("int", None, "largest request body, enforced while it arrives (chunked or not); "
                                         "default: max_upload_mb plus 64 KiB", min=1024, nullable=True),
        "body_timeout_s": S("float", 30.0, "longest wait for the next piece of a request body (slow clients get 408)",
                            min=0.1, max=3600.0),
        "keep_alive_timeout_s": S("float", 5.0, "idle seconds before a kept-alive connection is closed (uvicorn)",
                                  min=0.1, max=3600.0),
        "max_connections": S("int", 200, "connections served at once; more are answered 503 (uvicorn). All open "
                                         "connections (HTTP and Wyoming) are also kept below the descriptor limit "
                                         "(RLIMIT_NOFILE); past it a new client gets a fast 503", min=1),
        "header_timeout_s": S("float", 10.0, "seconds a new connection may take to send its request headers before "
                                             "it is closed", min=0.1, max=3600.0),
        "request_timeout_s": S("float", 120.0, "longest a synthesis request may take", min=0.1),
        "send_timeout_s": S("float", 30.0, "longest a streamed answer waits for its client to read the next "
                                           "piece; a client that stops reading is cut off", min=0.1, max=3600.0),
        "default_format": S("str", "mp3", "OpenAI route response_format default", choices=("mp3", "opus", "aac", "flac", "wav", "pcm")),
        "voice_map": S("dict", {}, "OpenAI voice name -> installed or saved voice; added to the defaults, which map "
                                   "the 13 OpenAI voice names (alloy ... cedar) to piper.default_voice"),
        "model_map": S("dict", {"tts-1": "fast", "tts-1-hd": "high", "gpt-4o-mini-tts": "high", "gpt-4o-tts": "high"},
                       "OpenAI model name -> quality tier or engine name; entries given are added to these defaults"),
        "allowed_origins": S("list", [], "web origins (scheme://host[:port]) allowed to call the API from a browser; "
                                         "others get no CORS answer and their state-changing requests are refused"),
        "allowed_hosts": S("list", [], "Host header values accepted (refuses DNS rebinding); default: localhost names "
                                       "and the bound address; '*' accepts any"),
        "api_keys": S("dict", {}, "user name -> salted API key hash (or a list of them), from 'config hash-key'",
                      secret=True),
        "api_keys_file": S("path", None, "YAML file of plain API key -> user name, hashed in memory at start "
                                         "(also: env DEMOD_VOICE_API_KEYS=user:key,...)", nullable=True),
        "allow_insecure_keys_file": S("bool", False, "accept an api_keys_file readable by the group or others "
                                                     "(serve --allow-insecure-keys-file); otherwise a startup error"),
        "admin_users": S("list", [], "users who see every user's audit details in /api/engines"),
        "model_idle_unload_s": S("float", 0.0, "unload a model no request used for this many seconds; the next request "
                                               "reloads it (0: keep models loaded)", min=0.0),
    },
    "engines": {
        "modules": S("dict", {}, "more engines: name -> the module path of its plugin (an engine folder's plugin.py, "
                                 "importable), listed after the built-in ones"),
        "max_loaded": S("int", 0, "most models (voices, checkpoints) loaded at once in a process; loading one more "
                                  "unloads the least recently used (0: no limit)", min=0),
    },
    "gpt_sovits": _ENGINE_SECTIONS["gpt_sovits"],
    "router": {
        "tiers": S("dict", {"highest": ["xtts", "piper"], "high": ["xtts", "piper"], "medium": ["piper"], "fast": ["piper"]},
                   "quality tier -> engine chain tried in order"),
        "timeout_s": S("float", 60.0, "seconds an engine may take to produce its first audio before the next one is tried", min=0.1),
        "allow_other_voice": S("bool", False, "when the engine of a saved voice cannot speak it, let another engine "
                                              "answer in a different speaker's voice (said in X-Fallback/X-Voice); a "
                                              "request's allow_other_voice overrides it"),
        "breaker_failures": S("int", 3, "consecutive failures that open an engine's circuit breaker", min=1),
        "breaker_cooldown_s": S("float", 30.0, "seconds a failing engine is skipped", min=0.0),
        "audit_log": S("path", None, "JSON-lines file of fallback events; default <data_dir>/logs/audit.jsonl", nullable=True),
        "outbound_max_mb": S("float", 64.0, "largest answer read from a remote engine or GPT-SoVITS (checked from "
                                            "Content-Length, then while it arrives)", min=0.001),
        "outbound_max_audio_s": S("float", 600.0, "longest audio decoded from a remote engine or GPT-SoVITS answer "
                                                  "(a longer one is that engine's failure)", min=1.0),
        "remotes": S("dict", {}, "name -> {url, api_key_env, model, voice_map, timeout_s, sample_rate}: an OpenAI-compatible "
                                 "/v1/audio/speech server usable as an engine in chains and tiers (keys from the environment only)"),
    },
    "ray_serve": {
        "address": S("str", "local", "Ray cluster for 'serve --ray': local (start one here), auto (the one 'ray start' "
                                     "runs on this machine) or an address (ray://host:10001, host:6379)"),
        "app_name": S("str", "demod-voice", "the Serve application's name (on a shared cluster only this one is "
                                            "removed at stop)"),
        "num_cpus": S("int", None, "CPUs the local Ray instance offers (address: local); default: this machine's",
                      min=1, max=4096, nullable=True),
        "ingress_replicas": S("int", 1, "replicas of the HTTP ingress (the FastAPI app)", min=1, max=1024),
        "ingress_threads": S("int", 64, "engine calls one ingress replica keeps in flight (threads that wait on "
                                        "engine replicas)", min=1, max=4096),
        "engines": S("dict", {}, "engine name -> {replicas, num_cpus, num_gpus, max_ongoing_requests, min_replicas, "
                                 "max_replicas, target_ongoing_requests, resources}: its Serve deployment (default: "
                                 "1 replica; Piper num_cpus = piper.onnx_threads or 1; GPU engines num_gpus 1 when "
                                 "device is not cpu)"),
        "cache_dir": S("path", None, "the shared audio cache's folder (on storage every node reaches); default: "
                                     "cache.dir, else <cache_dir>/audio", nullable=True),
    },
    "auth": {
        "required": S("bool", False, "reject requests without a valid API key (keys: server.api_keys)"),
    },
    "stt": {
        "model": S("str", "whisper-base.en", "Whisper model: a registry name (models pull whisper-...) or a "
                                             "faster-whisper (CTranslate2) folder"),
        "device": S("str", None, "where Whisper runs (cpu or gpu); default: the global device", nullable=True,
                    choices=("auto", "cpu", "gpu")),
        "compute_type": S("str", "default", "CTranslate2 compute type",
                          choices=("default", "int8", "int8_float16", "int8_float32", "float16", "float32")),
        "beam_size": S("int", 5, "beam width of the Whisper decoder (1 is fastest)", min=1, max=20),
        "max_audio_s": S("float", 600.0, "longest audio accepted for one transcription", min=1.0, max=86400.0),
        "collect_min_score": S("float", 0.8, "quality score from which a collected sample triggers reference "
                                             "re-selection", min=0.0, max=1.0),
    },
    "wyoming": {
        "uri": S("str", None, "Wyoming (Home Assistant) listener: tcp://HOST:PORT or unix://PATH; null = off",
                 nullable=True),
        "socket_mode": S("str", "0660", "permissions of a unix:// socket (octal): 0660 lets its group connect "
                                        "(Home Assistant); the server's umask 077 would leave it 0700"),
        "socket_group": S("str", None, "group given to a unix:// socket (the server's user must belong to it); "
                                       "empty: the user's own group", nullable=True),
        "zeroconf": S("bool", False, "advertise the Wyoming TCP listener over mDNS (needs the zeroconf package)"),
        "zeroconf_name": S("str", None, "mDNS service name; default demod-voice-<host>", nullable=True),
        "user": S("str", "local", "the user whose saved voices Wyoming serves (Wyoming has no authentication)"),
        "rvc_after": S("list", [], "TTS voices offered with every RVC voice chained after them (empty: the "
                                   "default Piper voice)"),
        "collect_voice": S("str", None, "opt-in: add audio transcribed over Wyoming to this saved voice of the "
                                        "Wyoming user", nullable=True),
        "samples_per_chunk": S("int", 1024, "samples per Wyoming audio-chunk event", min=64, max=65536),
        "max_connections": S("int", 64, "Wyoming connections served at once; more are accepted, sent an error "
                                        "event and closed", min=1, max=100000),
        "idle_timeout_s": S("float", 60.0, "seconds a Wyoming connection may wait before starting its next event "
                                           "before it is closed", min=0.1, max=86400.0),
        "header_timeout_s": S("float", 60.0, "seconds a Wyoming client may take to send one event once started "
                                             "(header, data and payload); slower ones get an error and a close",
                              min=0.1, max=3600.0),
        "max_audio_bytes": S("int", 256 * 1024 * 1024, "bytes of audio all Wyoming connections together may buffer "
                                                       "for transcription; past it a client gets an error and a "
                                                       "close", min=65536),
    },
}


#: Keys that existed before, and what replaced them (an old config gets this as its hint).
RENAMED = {
    "auth.keys": "API keys are stored hashed now: put 'demod-voice config hash-key' output under server.api_keys, "
                 "or the plain keys in server.api_keys_file",
    "auth.keys_file": "renamed to server.api_keys_file (same format: plain key -> user)",
    "server.cors_origins": "renamed to server.allowed_origins",
    "server.models": "renamed to server.model_map (same format: OpenAI model name -> tier or engine)",
}


def _iter_settings(schema: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Setting]]:
    for key, value in schema.items():
        path = f"{prefix}{key}"
        if isinstance(value, Setting):
            yield path, value
        else:
            yield from _iter_settings(value, path + ".")


SETTINGS: dict[str, Setting] = dict(_iter_settings(SCHEMA))


def defaults() -> dict:
    out: dict = {}
    for key, setting in SETTINGS.items():
        _set(out, key, copy.deepcopy(setting.default))
    return out


def _set(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = value


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if value is None and path not in SETTINGS and any(k.startswith(path + ".") for k in SETTINGS):
            continue  # an empty section ("piper:" with nothing under it)
        if isinstance(value, Mapping) and path not in SETTINGS and path not in RENAMED:
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check(key: str, value: Any, origin: str) -> Any:
    """Validate one value against its setting; return the normalised value."""
    setting = SETTINGS.get(key)
    if setting is None and key in RENAMED:
        raise ConfigError(f"config key '{key}' (from {origin}) is no longer used", hint=RENAMED[key])
    if setting is None:
        close = difflib.get_close_matches(key, SETTINGS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "run 'demod-voice config show' for the known keys"
        raise ConfigError(f"unknown config key '{key}' (from {origin})", hint=hint)

    def bad(expected: str) -> ConfigError:
        return ConfigError(
            f"config key '{key}' (from {origin}) expects {expected}, found {value!r} ({_type_name(value)})",
            hint=setting.doc,
        )

    if value is None:
        if setting.nullable:
            return None
        raise bad(setting.type)
    kind = setting.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        value = float(value)
        if not math.isfinite(value):
            raise bad("a finite number")
    elif kind in ("str", "path"):
        if not isinstance(value, str) or (kind == "path" and not value):
            raise bad("a string" if kind == "str" else "a path")
        if kind == "path":
            value = str(Path(value).expanduser())
    elif kind == "list":
        if isinstance(value, str):
            value = [v for v in value.split(os.pathsep) if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
    elif kind == "dict":
        if not isinstance(value, dict):
            raise bad("a mapping")
    if setting.choices and value not in setting.choices:
        raise bad("one of " + ", ".join(map(str, setting.choices)))
    if setting.min is not None and value < setting.min:
        raise bad(f"a value >= {setting.min}")
    if setting.max is not None and value > setting.max:
        raise bad(f"a value <= {setting.max}")
    return value


def check_option(key: str, value: Any, origin: str = "request") -> Any:
    """Validate one engine option from a request (CLI flag, batch cell, HTTP body) against the schema.

    Strings are parsed as numbers where the setting is numeric (CSV cells, query strings); the
    error is an ``InputError`` naming the option and the allowed range (exit 2, HTTP 400).
    """
    setting = SETTINGS.get(key)
    if setting is not None and isinstance(value, str) and setting.type in ("int", "float"):
        text = value.strip()
        try:
            value = int(text) if setting.type == "int" else float(text)
        except ValueError:
            pass  # _check names the expected type
    if setting is not None and setting.type == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if setting is not None and setting.type == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return _check(key, value, origin)
    except ConfigError as exc:
        name = key.split(".", 1)[-1]
        raise InputError(exc.message.replace(f"config key '{key}'", f"option '{name}'"), hint=exc.hint) from None


def section_options(section: str, keys: tuple[str, ...], given: Mapping[str, Any], cfg: Config,
                    origin: str = "request") -> dict:
    """Effective options of one engine: each key from ``given`` (validated) or else from ``cfg``."""
    unknown = set(given) - set(keys)
    if unknown:
        raise InputError(f"unknown {section} option(s) {', '.join(sorted(unknown))}", hint="known: " + ", ".join(keys))
    out = {}
    for key in keys:
        value = given.get(key)
        out[key] = check_option(f"{section}.{key}", value, origin) if value is not None else cfg.get(f"{section}.{key}")
    return out


#: Bounds on what a YAML file may ask of the parser (config files are small and hand-written).
YAML_MAX_ALIASES = 100
YAML_MAX_EXPANSION = 10_000
YAML_MAX_DEPTH = 64
YAML_MAX_INT_DIGITS = 100


def _node_size(node, sizes: dict) -> int:
    """Values in ``node`` with every alias expanded (each distinct node computed once)."""
    key = id(node)
    if key not in sizes:
        sizes[key] = 1  # a recursive alias counts once
        children = node.value if isinstance(node.value, list) else []
        total = 1
        for child in children:
            for part in child if isinstance(child, tuple) else (child,):
                total += _node_size(part, sizes)
        sizes[key] = total
    return sizes[key]


def _strict_loader():
    """A ``yaml.SafeLoader`` that refuses what only a hostile file needs: alias expansion beyond a small
    budget (billion laughs), nesting deeper than ``YAML_MAX_DEPTH`` (RecursionError), integers longer
    than ``YAML_MAX_INT_DIGITS`` digits (slow, then ValueError) and duplicate keys (the last ``auth:``
    block would silently win). Each refusal is a ``yaml.MarkedYAMLError`` with the offending line."""
    import yaml

    class Refused(yaml.MarkedYAMLError):
        pass

    class StrictLoader(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            self._aliases = 0
            self._expanded = 0
            self._sizes: dict = {}
            self._depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                self._aliases += 1
                target = self.anchors.get(event.anchor)
                self._expanded += _node_size(target, self._sizes) if target is not None else 0
                if self._aliases > YAML_MAX_ALIASES or self._expanded > YAML_MAX_EXPANSION:
                    raise Refused(problem=f"aliases (*name) that expand to more than {YAML_MAX_EXPANSION} values",
                                  problem_mark=event.start_mark)
            self._depth += 1
            try:
                if self._depth > YAML_MAX_DEPTH:
                    raise Refused(problem=f"nesting deeper than {YAML_MAX_DEPTH} levels",
                                  problem_mark=self.peek_event().start_mark)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_yaml_int(self, node):
            digits = sum(ch.isdigit() for ch in str(node.value))
            if digits > YAML_MAX_INT_DIGITS:
                raise Refused(problem=f"an integer of {digits} digits (at most {YAML_MAX_INT_DIGITS})",
                              problem_mark=node.start_mark)
            return super().construct_yaml_int(node)

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen: set = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: SafeLoader reports it itself
                        continue
                    if duplicate:
                        raise Refused(problem=f"duplicate key '{key}'", problem_mark=key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
    return StrictLoader


def safe_yaml(text: str):
    """``yaml.safe_load`` with the bounds of ``_strict_loader``."""
    import yaml

    return yaml.load(text, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)


def load_yaml_file(path: Path | str, what: str = "config file") -> dict:
    """Read a YAML mapping with a clear error for every way it can be wrong."""
    import yaml

    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}", hint="check the path, or run 'demod-voice config init'") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    try:
        data = safe_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{what} {path} is not valid YAML{where}", hint=str(getattr(exc, "problem", "")) or None) from None
    except (RecursionError, MemoryError, ValueError) as exc:  # the bounds above should make these unreachable
        raise ConfigError(f"{what} {path} is too complex to read ({type(exc).__name__})",
                          hint="use plain keys and values") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of keys, found {_type_name(data)}")
    return data


@dataclass
class Config:
    """The effective configuration plus where each value came from."""

    values: dict = field(default_factory=defaults)
    sources: dict = field(default_factory=lambda: {k: "default" for k in SETTINGS})
    files: list = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.values
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def __getitem__(self, key: str) -> Any:
        if key not in SETTINGS:
            raise KeyError(key)
        return self.get(key)

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def apply(self, tree: Mapping[str, Any], origin: str, merge: bool = True) -> None:
        """Merge a (possibly nested) mapping on top, validating every key; ``merge``: mapping values merge with
        the layers below (a file or the environment), else replace them (``set``)."""
        for key, value in _flatten(tree):
            checked = _check(key, value, origin)
            current = self.get(key)
            if merge and SETTINGS[key].type == "dict" and isinstance(current, dict) and isinstance(checked, dict):
                # mappings merge deeply, as documented: ``router.tiers: {medium: [...]}`` keeps the other tiers
                checked = {**current, **checked}
            _set(self.values, key, checked)
            self.sources[key] = origin

    def set(self, key: str, value: Any, origin: str) -> None:
        """Set one key (used for command-line flags): the value replaces the key's, mappings included."""
        self.apply({key: value} if "." not in key else _nest(key, value), origin, merge=False)

    # Convenient derived locations -------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return Path(self.get("paths.data_dir") or paths.data_home())

    @property
    def cache_dir(self) -> Path:
        return Path(self.get("paths.cache_dir") or paths.cache_home())


def _nest(dotted: str, value: Any) -> dict:
    out: dict = {}
    _set(out, dotted, value)
    return out


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """``DEMOD_VOICE_A__B=v`` -> {"a.b": (parsed v, "env DEMOD_VOICE_A__B")}."""
    import yaml

    environ = os.environ if environ is None else environ
    out = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in IGNORED_ENV:
            continue
        key = ENV_ALIASES.get(name) or name[len(ENV_PREFIX):].lower().replace("__", ".")
        try:
            value = safe_yaml(raw) if raw.strip() else None
        except (yaml.YAMLError, RecursionError, ValueError):
            value = raw
        if SETTINGS.get(key) is not None and SETTINGS[key].type in ("str", "path") and value is not None:
            value = raw  # keep strings verbatim ("0123", "yes")
        elif SETTINGS.get(key) is not None and SETTINGS[key].type == "bool" and raw.strip() in ("0", "1"):
            value = raw.strip() == "1"  # DEMOD_VOICE_OFFLINE=1
        out[key] = (value, f"env {name}")
    return out


#: Environment variables with the prefix that are not config keys.
IGNORED_ENV = {"DEMOD_VOICE_CONFIG", "DEMOD_VOICE_API_KEYS"}
#: Short names for config keys (the offline switch is set by hand and by the NixOS module).
ENV_ALIASES = {"DEMOD_VOICE_OFFLINE": "models.offline"}


def load(config_file: str | Path | None = None, flags: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None, user_file: Path | None = None) -> Config:
    """Build the effective configuration from every layer."""
    cfg = Config()
    user_file = paths.user_config_file() if user_file is None else user_file
    if user_file.is_file():
        cfg.apply(load_yaml_file(user_file), str(user_file))
        cfg.files.append(str(user_file))
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("DEMOD_VOICE_CONFIG")
    if config_file:
        cfg.apply(load_yaml_file(config_file), str(config_file))
        cfg.files.append(str(config_file))
    for key, (value, origin) in env_overrides(environ).items():
        cfg.apply(_nest(key, value), origin)
    for key, value in (flags or {}).items():
        if value is not None:
            cfg.set(key, value, "command line")
    from demod_voice import offline

    offline.apply(cfg)
    return cfg


def validate_file(path: str | Path) -> list[str]:
    """Validate a config file on its own; return the keys it sets."""
    cfg = Config()
    tree = load_yaml_file(path)
    cfg.apply(tree, str(path))
    return [k for k, _ in _flatten(tree)]


def example_yaml() -> str:
    """A commented example config listing every key with its default."""
    lines = ["# demod-voice configuration. Every key is optional; shown values are the defaults.",
             "# Precedence: defaults < this file < --config FILE < DEMOD_VOICE_* env < flags.", ""]

    def emit(schema: Mapping[str, Any], indent: int) -> None:
        pad = "  " * indent
        for key, value in schema.items():
            if isinstance(value, Setting):
                extra = f" (one of: {', '.join(value.choices)})" if value.choices else ""
                lines.append(f"{pad}# {value.doc}{extra}")
                lines.append(f"{pad}# {key}: {_yaml_scalar(value.default)}")
            else:
                lines.append(f"{pad}# {key}:")
                emit(value, indent + 1)

    emit(SCHEMA, 0)
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def render_effective(cfg: Config) -> list[tuple[str, Any, str]]:
    """(key, value, source) rows for ``config show``; secrets are redacted."""
    return [(key, redact(cfg.get(key)) if setting.secret else cfg.get(key), cfg.source(key))
            for key, setting in SETTINGS.items()]


def redact(value: Any) -> Any:
    """A secret's shape without its content: mapping keys stay (user names), values become ``<redacted>``."""
    if isinstance(value, dict):
        return {k: "<redacted>" for k in value}
    return "<redacted>" if value else value
