"""XTTS-v2 zero-shot voice cloning on coqui-tts.

A checkpoint folder (``config.json``, ``model.pth``, ``vocab.json``;
``speakers_xtts.pth`` optional) is loaded once per process through coqui's
own loader (``Xtts(config)`` + ``load_checkpoint``) and cached by
(path, device, precision). Everything that can be checked without torch is
checked first, without importing it: the model folder, the language, the
reference files (read with soundfile, never ``torchaudio.load``) and the
conditioning-latents cache. So bad input fails in a fraction of a second and a
cache hit never decodes the references again.

Conditioning latents (the GPT style latents and the speaker embedding) are
what a reference voice costs to compute. They are cached on disk as
safetensors, keyed by the content of the reference files, the model identity
and the conditioning parameters, and saved with a voice profile (``xtts-zero-shot --save-voice``).

Modules, one job each: ``checkpoint`` (the model folder, config, languages, identity), ``reference``
(reading and trimming reference audio), ``latents`` (conditioning latents, their one on-disk cache and
the model id of saved ones) and ``engine`` (the loaded model). Only ``engine`` imports torch, and only when a
model loads.
"""

from __future__ import annotations

from demod_voice.config import XTTS_SAMPLING_KEYS as SAMPLING_KEYS
from demod_voice.engines.xtts.checkpoint import (
    OPTIONAL_FILES,
    REQUIRED_FILES,
    check_language,
    conditioning_params,
    missing_files,
    model_identity,
    model_languages,
    read_model_config,
    resolve_model_dir,
)
from demod_voice.engines.xtts.engine import XttsEngine, load
from demod_voice.engines.xtts.latents import (
    PREPROCESS_VERSION,
    ConditioningPlan,
    XttsLatents,
    latents_model_id,
    plan_conditioning,
)
from demod_voice.engines.xtts.reference import (
    AUDIO_SUFFIXES,
    BEST_WINDOW_SECONDS,
    LONG_REFERENCE_SECONDS,
    MIN_REFERENCE_SECONDS,
    MIN_WINDOW_SECONDS,
    REFERENCE_RATE,
    best_window,
    expand_references,
    load_reference,
)

__all__ = [
    "AUDIO_SUFFIXES", "BEST_WINDOW_SECONDS", "LONG_REFERENCE_SECONDS", "MIN_REFERENCE_SECONDS", "MIN_WINDOW_SECONDS",
    "OPTIONAL_FILES", "PREPROCESS_VERSION", "REFERENCE_RATE", "REQUIRED_FILES", "SAMPLING_KEYS", "ConditioningPlan",
    "XttsEngine", "XttsLatents", "best_window", "check_language", "conditioning_params", "expand_references", "load",
    "latents_model_id", "load_reference", "missing_files", "model_identity", "model_languages", "plan_conditioning",
    "read_model_config", "resolve_model_dir",
]
