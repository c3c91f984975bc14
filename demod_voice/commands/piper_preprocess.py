"""``piper-preprocess --input-dir --output-dir --language``: prepare a Piper training set."""

from __future__ import annotations

from demod_voice.commands._common import not_available


def register(sub, common) -> None:
    p = sub.add_parser("piper-preprocess", parents=[common], help="prepare a dataset for Piper training",
                       description="Validate, clean and phonemize recordings into a Piper training set.")
    p.add_argument("--input-dir", required=True, metavar="DIR", help="LJSpeech-style folder or recordings")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="where the training set is written")
    p.add_argument("--language", default="en-us", help="espeak-ng voice, e.g. en-us")
    p.set_defaults(func=not_available("piper-preprocess"))
