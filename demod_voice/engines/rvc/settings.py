"""RVC's config section (``rvc.*``): its keys, defaults and ranges, declared beside the engine.

The registry gathers this file into the one schema (``demod_voice.config``, ``registry.settings_modules``),
loading it by itself rather than through the engine's package, so reading the config never imports model
code. It imports nothing but the ``Setting`` type.
"""

from __future__ import annotations

from demod_voice.setting import Setting as S

SECTION = "rvc"

#: Pitch extraction methods RVC knows (``pm`` needs the GPL extra praat-parselmouth).
F0_METHODS = ("rmvpe", "crepe", "crepe-tiny", "harvest", "dio", "pm")

SETTINGS = {
    "hubert": S("path", None, "HuBERT/ContentVec weights (hubert_base.pt or a transformers folder)", nullable=True),
    "rmvpe": S("path", None, "RMVPE weights (rmvpe.pt)", nullable=True),
    "f0_method": S("str", "rmvpe", "pitch extraction method", choices=F0_METHODS),
    "pitch": S("float", 0.0, "transpose by this many semitones (+12 = one octave up)", min=-24.0, max=24.0),
    "index_rate": S("float", 0.75, "share of retrieved (index) features, 0-1", min=0.0, max=1.0),
    "filter_radius": S("int", 3, "median filter on harvest f0 when >= 3", min=0, max=7),
    "rms_mix_rate": S("float", 0.25, "1 keeps the converted loudness envelope, 0 follows the input's", min=0.0, max=1.0),
    "protect": S("float", 0.33, "keep original features on unvoiced frames (0.5 = off)", min=0.0, max=0.5),
    "resample_sr": S("int", None, "resample the converted audio to this rate (empty: the voice's rate)",
                     min=8000, max=192000, nullable=True),
    "context_s": S("float", None, "context converted on both sides of each segment and trimmed (empty: RVC's, "
                                  "1 s when the voice runs in fp32, 3 s in fp16 on a GPU)",
                   min=0.01, max=10.0, nullable=True),
    "max_input_s": S("float", 600.0, "longest audio accepted for one conversion (POST /api/convert); longer "
                                     "uploads are refused while they are decoded", min=1.0, max=86400.0),
}
