"""Piper's config section (``piper.*``): its keys, defaults and ranges, declared beside the engine.

The registry gathers this file into the one schema (``demod_voice.config``, ``registry.settings_modules``),
loading it by itself rather than through the engine's package, so reading the config never imports model
code. It imports nothing but the ``Setting`` type.
"""

from __future__ import annotations

from demod_voice.setting import Setting as S

SECTION = "piper"

SETTINGS = {
    "default_voice": S("str", "en_US-joe-medium", "voice used when none is named (demo, server)"),
    "backend": S("str", "onnxruntime", "inference backend", choices=("onnxruntime", "tinygrad")),
    "length_scale": S("float", None, "phoneme length (>1 slower); default from the voice", min=0.05, max=10.0, nullable=True),
    "noise_scale": S("float", None, "generator noise; default from the voice", min=0.0, max=5.0, nullable=True),
    "noise_w": S("float", None, "phoneme width noise; default from the voice", min=0.0, max=5.0, nullable=True),
    "sentence_silence": S("float", 0.0, "seconds of silence between sentences (none after the last)", min=0.0, max=10.0),
    "volume": S("float", 1.0, "output volume multiplier", min=0.0, max=10.0),
    "normalize_audio": S("bool", True, "scale each sentence to full loudness, as piper does (piper-infer "
                                       "--no-normalize turns it off)"),
    "onnx_threads": S("int", None, "ONNX Runtime intra-op threads per run (default: one per core); "
                      "the count changes the audio's last bits", min=1, max=256, nullable=True),
    "onnx_spinning": S("str", "auto", "when ONNX Runtime's threads may spin-wait: auto (only while a run is the "
                       "process's only Piper run), on, off; the audio is the same", choices=("auto", "on", "off")),
    "arena_release_ids": S("int", 400, "runs longer than this many phoneme ids (times length_scale) give the CPU "
                           "memory arena's free memory back at their end; 0: every run", min=0, max=1_000_000),
}
