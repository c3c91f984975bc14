"""RVC options shared by ``rvc-convert`` and the TTS commands that chain into RVC (``--rvc NAME``).

Importing this module is light: the engine loads only when a handler runs.
"""

from __future__ import annotations

import argparse

from demod_voice.arguments import setting_number
from demod_voice.config import F0_METHODS

semitones = setting_number("rvc.pitch", unit="a number of semitones")
index_rate = setting_number("rvc.index_rate")
rms_mix_rate = setting_number("rvc.rms_mix_rate")
protect_float = setting_number("rvc.protect")
radius = setting_number("rvc.filter_radius", unit="a whole number")
sample_rate = setting_number("rvc.resample_sr", unit="a sample rate in Hz", zero_ok=True)

#: Conversion option -> flag attribute (without prefix).
_OPTION_FLAGS = ("pitch", "f0_method", "index_rate", "filter_radius", "rms_mix_rate", "protect", "resample_sr")


def add_conversion_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The conversion knobs; ``prefix='rvc-'`` for TTS commands (``--rvc-pitch`` ...)."""
    p.add_argument(f"--{prefix}pitch", type=semitones, default=None, metavar="SEMITONES",
                   help="transpose by -24..24 semitones (+12 = one octave up)")
    p.add_argument(f"--{prefix}f0-method", choices=F0_METHODS, metavar="METHOD", default=None,
                   help="pitch extraction: rmvpe (default), crepe, crepe-tiny, harvest, dio; "
                        "pm needs the GPL extra praat-parselmouth")
    p.add_argument(f"--{prefix}index", metavar="FILE.index", help="faiss retrieval index (default: the voice's own)")
    p.add_argument(f"--{prefix}index-rate", type=index_rate, metavar="X",
                   help="share of retrieved features, 0-1 (default 0.75)")
    p.add_argument(f"--{prefix}filter-radius", type=radius, metavar="N",
                   help="median filter on harvest pitch when >= 3 (default 3)")
    p.add_argument(f"--{prefix}rms-mix-rate", type=rms_mix_rate, metavar="X",
                   help="1 keeps the converted loudness envelope, 0 follows the input's (default 0.25)")
    p.add_argument(f"--{prefix}protect", type=protect_float, metavar="X",
                   help="keep original features on breaths/consonants, 0-0.5 (0.5 = off; default 0.33)")
    p.add_argument(f"--{prefix}resample-sr", type=sample_rate, metavar="HZ",
                   help="resample the output to this rate (default: the model's rate)")
    p.add_argument("--hubert", metavar="PATH", help="HuBERT/ContentVec weights: hubert_base.pt or a transformers "
                                                    "folder (config rvc.hubert)")
    p.add_argument("--rmvpe", metavar="PATH", help="RMVPE weights rmvpe.pt (config rvc.rmvpe)")


def add_chain_arguments(p: argparse.ArgumentParser) -> None:
    """``--rvc NAME`` plus ``--rvc-*`` options for TTS commands."""
    group = p.add_argument_group("RVC voice conversion (chained after synthesis)")
    group.add_argument("--rvc", metavar="MODEL", help="convert the speech with this RVC voice (name or .pth)")
    add_conversion_arguments(group, prefix="rvc-")


def check_chain_arguments(args) -> None:
    """``--rvc-*`` options mean nothing without ``--rvc``: say so instead of ignoring them."""
    from demod_voice.errors import UsageError

    if getattr(args, "rvc", None):
        return
    given = [name for name in ("pitch", "f0_method", "index", "index_rate", "filter_radius", "rms_mix_rate",
                               "protect", "resample_sr") if getattr(args, f"rvc_{name}", None)]
    given += [name for name in ("hubert", "rmvpe") if getattr(args, name, None)]
    if given:
        flag = given[0].replace("_", "-")
        raise UsageError(f"--{flag if flag in ('hubert', 'rmvpe') else 'rvc-' + flag} needs --rvc MODEL",
                         hint="add --rvc NAME to convert the speech, or drop the RVC options")


def apply_aux_flags(args, ctx) -> None:
    """``--hubert``/``--rmvpe`` are config paths (``rvc.hubert``/``rvc.rmvpe``); the flag wins."""
    for key, attr in (("rvc.hubert", "hubert"), ("rvc.rmvpe", "rmvpe")):
        if getattr(args, attr, None):
            ctx.flags[key] = getattr(args, attr)
            if ctx._cfg is not None:  # config already loaded: the flag still wins
                ctx._cfg.set(key, getattr(args, attr), "command line")


def rvc_request(args, prefix: str = "rvc-", model: str | None = None):
    """The parsed conversion flags as an ``RvcRequest`` (None when no voice is named)."""
    from demod_voice.synthesis import RvcRequest

    p = prefix.replace("-", "_")
    voice = model if model is not None else getattr(args, "rvc", None)
    if not voice:
        return None
    from demod_voice.needs import require

    require("rvc", "RVC conversion")  # packages before weights
    given = {name: getattr(args, f"{p}{name}") for name in _OPTION_FLAGS}
    return RvcRequest(voice=voice, options={k: v for k, v in given.items() if v is not None},
                      index=getattr(args, f"{p}index"))
