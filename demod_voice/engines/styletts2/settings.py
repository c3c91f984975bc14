"""StyleTTS2's config section (``styletts2.*``): its keys, defaults and ranges, declared beside the engine.

The registry gathers this file into the one schema (``demod_voice.config``, ``registry.settings_modules``),
loading it by itself rather than through the engine's package, so reading the config never imports model
code. It imports nothing but the ``Setting`` type.
"""

from __future__ import annotations

from demod_voice.setting import Setting as S

SECTION = "styletts2"

SETTINGS = {
    "model_dir": S("path", None, "StyleTTS2 checkpoint folder (config.yml + one .pth); "
                   "default <data_dir>/models/styletts2-libritts", nullable=True),
    "language": S("str", "en-us", "espeak-ng voice for the phonemes (the LibriTTS model speaks English)"),
    "alpha": S("float", 0.3, "timbre, from 0 (the reference's) to 1 (the one style diffusion draws for the text)",
               min=0.0, max=1.0),
    "beta": S("float", 0.7, "prosody, from 0 (the reference's) to 1 (the one style diffusion draws for the text)",
              min=0.0, max=1.0),
    "diffusion_steps": S("int", 5, "style diffusion sampling steps (more: more varied, slower)", min=1, max=50),
    "embedding_scale": S("float", 1.0, "classifier-free guidance on the text (higher: more expressive)",
                         min=0.0, max=10.0),
    "speed": S("float", 1.0, "speaking rate (durations divided by it)", min=0.25, max=4.0),
    "seed": S("int", None, "random seed for repeatable output (empty: a new draw each time)", min=0,
              max=2**32 - 1, nullable=True),
}
