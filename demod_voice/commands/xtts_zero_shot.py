"""``xtts-zero-shot REFERENCE TEXT --output --language``: voice cloning with XTTS-v2."""

from __future__ import annotations

from demod_voice.commands._common import add_format_argument, add_text_arguments, not_available


def register(sub, common) -> None:
    p = sub.add_parser("xtts-zero-shot", parents=[common], help="clone a voice from reference audio (XTTS-v2)",
                       description="Speak TEXT in the voice of REFERENCE audio with XTTS-v2.")
    p.add_argument("reference", metavar="REFERENCE", help="reference audio of the voice to clone")
    add_text_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: output.wav)")
    p.add_argument("--language", default=None, help="language code, e.g. en")
    add_format_argument(p)
    p.set_defaults(func=not_available("xtts-zero-shot"))
