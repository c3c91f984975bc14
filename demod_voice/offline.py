"""Offline mode: one switch that keeps every part of demod-voice off the network.

``DEMOD_VOICE_OFFLINE=1`` and the config key ``models.offline: true`` mean the same.
When it is on, ``models pull`` and anything else that would reach a model hub stop
with a clear error instead of trying, and the hub libraries are told too
(``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``, which they read when imported), so a
library deep inside an engine cannot quietly download either. The NixOS module
turns it on: there, models and voices come pinned from the Nix store.
"""

from __future__ import annotations

import os

from demod_voice.errors import UsageError

ENV = "DEMOD_VOICE_OFFLINE"
CONFIG_KEY = "models.offline"
#: What huggingface_hub and transformers read to stay offline.
HUB_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


def active() -> bool:
    """True when this process (or the one that started it) is in offline mode."""
    return os.environ.get(ENV, "").strip().lower() in _TRUE


def apply(cfg) -> None:
    """Turn offline mode on for this process and its children when the config asks for it."""
    if cfg.get(CONFIG_KEY):
        os.environ[ENV] = "1"
    if active():
        for name in HUB_ENV:
            os.environ[name] = "1"


def refuse(what: str) -> None:
    """Raise instead of touching the network for ``what`` when offline mode is on."""
    if active():
        raise UsageError(f"{what} needs the network, but offline mode is on ({ENV}=1 or config {CONFIG_KEY})",
                         hint="place the files by hand (or pin them with the NixOS module's voices/models), "
                              "or run without offline mode")
