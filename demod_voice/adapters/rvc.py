"""RVC: a conversion request + config -> validated options -> the cached engine for the voice."""

from __future__ import annotations

from demod_voice import config as config_mod
from demod_voice.audio import Audio


def options(rvc_request, cfg) -> dict:
    """Every conversion option, from the request or else the config, checked against the schema."""
    values = config_mod.section_options("rvc", config_mod.RVC_CONVERSION_KEYS, rvc_request.options, cfg)
    if values["resample_sr"] == 0:  # "0 = the voice's own rate" on the command line
        values["resample_sr"] = None
    return values


def engine_for(rvc_request, cfg, device: str | None = None):
    from demod_voice.engines import rvc

    return rvc.load(rvc_request.voice, cfg, device or cfg.get("device"), index=rvc_request.index)


def convert(audio: Audio, rvc_request, cfg, device: str | None = None, values: dict | None = None) -> Audio:
    """Convert one piece of speech into the request's RVC voice."""
    values = values if values is not None else options(rvc_request, cfg)
    return engine_for(rvc_request, cfg, device).convert(audio, **values)


def identity(rvc_request, cfg) -> object:
    """What the result depends on beyond the request: the voice file when it is a path."""
    import os

    from demod_voice.paths import file_identity

    return file_identity(rvc_request.voice) if os.path.isfile(rvc_request.voice) else rvc_request.voice
