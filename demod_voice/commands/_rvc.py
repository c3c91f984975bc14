"""RVC options shared by ``rvc-convert`` and the TTS commands that chain into RVC (``--rvc NAME``).

Importing this module is light: the engine loads only when a handler runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator

from demod_voice.commands._common import number_type

F0_METHODS = ("rmvpe", "crepe", "crepe-tiny", "harvest", "dio", "pm")


semitones = number_type(low=-24, high=24, unit="a number of semitones",
                        rule="pitch must be between -24 and 24 semitones")
unit_float = number_type(low=0, high=1, rule="expected a number from 0 to 1")
protect_float = number_type(low=0, high=0.5, rule="protect goes from 0 to 0.5 (0.5 = off)")
radius = number_type(int, low=0, high=7, unit="a whole number", rule="filter radius goes from 0 to 7")
sample_rate = number_type(int, low=8000, high=192000, unit="a sample rate in Hz", zero_ok=True,
                          rule="sample rate must be 8000-192000 Hz (0 = the model's)")


def add_conversion_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The conversion knobs; ``prefix='rvc-'`` for TTS commands (``--rvc-pitch`` ...)."""
    p.add_argument(f"--{prefix}pitch", type=semitones, default=0.0, metavar="SEMITONES",
                   help="transpose by -24..24 semitones (+12 = one octave up)")
    p.add_argument(f"--{prefix}f0-method", choices=F0_METHODS, metavar="METHOD", default=None,
                   help="pitch extraction: rmvpe (default), crepe, crepe-tiny, harvest, dio; "
                        "pm needs the GPL extra praat-parselmouth")
    p.add_argument(f"--{prefix}index", metavar="FILE.index", help="faiss retrieval index (default: the voice's own)")
    p.add_argument(f"--{prefix}index-rate", type=unit_float, metavar="X",
                   help="share of retrieved features, 0-1 (default 0.75)")
    p.add_argument(f"--{prefix}filter-radius", type=radius, metavar="N",
                   help="median filter on harvest pitch when >= 3 (default 3)")
    p.add_argument(f"--{prefix}rms-mix-rate", type=unit_float, metavar="X",
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


def apply_flags(args, ctx) -> None:
    for key, attr in (("rvc.hubert", "hubert"), ("rvc.rmvpe", "rmvpe")):
        if getattr(args, attr, None):
            ctx.flags[key] = getattr(args, attr)
            if ctx._cfg is not None:  # config already loaded: the flag still wins
                ctx._cfg.set(key, getattr(args, attr), "command line")


def options(args, prefix: str = "") -> dict:
    """Keyword options for ``RvcEngine.convert`` from parsed args."""
    p = prefix.replace("-", "_")
    return {
        "pitch": getattr(args, f"{p}pitch"),
        "f0_method": getattr(args, f"{p}f0_method"),
        "index_rate": getattr(args, f"{p}index_rate"),
        "filter_radius": getattr(args, f"{p}filter_radius"),
        "rms_mix_rate": getattr(args, f"{p}rms_mix_rate"),
        "protect": getattr(args, f"{p}protect"),
        "resample_sr": getattr(args, f"{p}resample_sr") or None,
    }


def load_engine(args, ctx, model: str, prefix: str = ""):
    from demod_voice.engines import rvc

    apply_flags(args, ctx)
    return rvc.load(model, ctx.cfg, ctx.device, index=getattr(args, f"{prefix.replace('-', '_')}index"))


def chain(chunks: Iterable, args, ctx, stream: bool = False) -> Iterator:
    """Convert synthesised chunks with ``--rvc``: sentence by sentence when streaming, else as one piece.

    Word timings carry over (voice conversion keeps the time axis).
    """
    from demod_voice.captions import carry, join

    engine = load_engine(args, ctx, args.rvc, prefix="rvc-")
    opts = options(args, prefix="rvc-")
    if stream:
        for chunk in chunks:
            yield carry(chunk, engine.convert(chunk, **opts))
        return
    collected = list(chunks)
    if collected:
        whole = join(collected)
        yield carry(whole, engine.convert(whole, **opts))
