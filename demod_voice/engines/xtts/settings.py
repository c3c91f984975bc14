"""XTTS's config section (``xtts.*``): its keys, defaults and ranges, declared beside the engine.

The registry gathers this file into the one schema (``demod_voice.config``, ``registry.settings_modules``),
loading it by itself rather than through the engine's package, so reading the config never imports model
code. It imports nothing but the ``Setting`` type.
"""

from __future__ import annotations

from demod_voice.setting import Setting as S

SECTION = "xtts"

SETTINGS = {
    "model_dir": S("path", None, "XTTS-v2 checkpoint folder; default <data_dir>/models/xtts-v2", nullable=True),
    "language": S("str", "en", "default language"),
    "precision": S("str", "fp32", "GPU precision", choices=("fp32", "fp16", "bf16")),
    "temperature": S("float", 0.75, "sampling temperature", min=0.01, max=5.0),
    "top_k": S("int", 50, "top-k sampling", min=1, max=1000),
    "top_p": S("float", 0.85, "nucleus sampling", min=0.01, max=1.0),
    "repetition_penalty": S("float", 10.0, "repetition penalty", min=1.0, max=100.0),
    "length_penalty": S("float", 1.0, "length penalty", min=-10.0, max=10.0),
    "speed": S("float", 1.0, "speech speed", min=0.25, max=4.0),
    "stream_chunk_size": S("int", 20, "GPT tokens per streamed chunk (--stream)", min=1, max=400),
    "seed": S("int", None, "random seed for repeatable output (empty: a new draw each time)", min=0, max=2**32 - 1,
              nullable=True),
    "latents_cache": S("bool", True, "cache conditioning latents on disk (<cache_dir>/xtts-latents)"),
    "max_batch": S("int", None, "concurrent requests decoded as one GPT batch; default 8 on GPU, 4 on CPU",
                   min=1, max=64, nullable=True),
    "batch_window_ms": S("float", 20.0, "how long an idle model waits for more requests to start a batch with",
                         min=0.0, max=2000.0),
    "prefix_cache_entries": S("int", 8, "voices whose GPT conditioning-prefix keys/values stay in memory, so "
                              "a request skips that part of the prefill (same audio); 0: none", min=0, max=1024),
}
