"""coqui ``tts``'s flags for ``xtts-zero-shot`` (docs/cli.md: "the same request"): ``--text``, ``--model_name``."""

from __future__ import annotations

import argparse

from demod_voice.errors import UsageError

#: coqui's names of the one model xtts-zero-shot runs.
XTTS_NAMES = ("tts_models/multilingual/multi-dataset/xtts_v2", "xtts_v2", "xtts-v2", "xtts")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", dest="text_flag", metavar="TEXT", help="coqui's --text: the text (then the one "
                                                                    "positional argument is REFERENCE)")
    p.add_argument("--model_name", "--model-name", dest="model_name", metavar="NAME",
                   help="coqui's --model_name; only XTTS-v2 (tts_models/multilingual/multi-dataset/xtts_v2) runs here")


def apply(args) -> None:
    """Fold the coqui flags into ours; refuse a model this command does not run, saying which does."""
    if args.model_name and args.model_name not in XTTS_NAMES:
        raise UsageError(f"--model_name {args.model_name}: xtts-zero-shot runs XTTS-v2 only",
                         hint="use --model_name tts_models/multilingual/multi-dataset/xtts_v2 (or leave it out); "
                              "Piper voices speak with 'demod-voice piper-infer'")
    if args.text_flag is not None:
        if args.text is not None or args.text_file is not None:
            raise UsageError("the text is given twice (--text and a positional TEXT or --text-file)")
        args.text = args.text_flag
