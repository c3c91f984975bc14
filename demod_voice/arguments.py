"""Argument helpers shared by several commands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from demod_voice.audio import FORMATS


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", metavar="TEXT", help="text to speak; '-' reads standard input")
    parser.add_argument("--text-file", metavar="FILE", help="read the text from a UTF-8 file instead")


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, type=str.lower, metavar="FORMAT",
                        help=f"output format ({', '.join(FORMATS)}); default: from the --output suffix")


def add_captions_argument(parser: argparse.ArgumentParser, extra: str = "") -> None:
    parser.add_argument("--captions", metavar="FILE",
                        help="also write word timings: .srt, .vtt or .json, chosen by the suffix" + extra)


def check_captions(path: str | None) -> None:
    """Refuse a bad --captions path before any work starts."""
    if path:
        from pathlib import Path

        from demod_voice import captions
        from demod_voice.audio import check_writable_dir

        captions.caption_format(path)
        check_writable_dir(Path(path))


def recording_words(chunks, timeline):
    """Pass chunks through, putting their word timings on ``timeline`` (a ``captions.Timeline``)."""
    for chunk in chunks:
        timeline.add(chunk.duration, chunk.words)
        yield chunk


def deliver_with_captions(chunks, target, captions_path: str | None):
    """``output.deliver``, then the captions file of the words the chunks carried."""
    from demod_voice import captions, output

    if not captions_path:
        return output.deliver(chunks, target)
    timeline = captions.Timeline()
    result = output.deliver(recording_words(chunks, timeline), target)
    captions.write(captions_path, timeline.words)
    return result


def number_type(cast=float, *, low=None, high=None, above=None, unit="a number", rule=None, zero_ok=False):
    """An argparse ``type`` that parses ``cast`` and checks its range, with a message naming both.

    ``low``/``high`` are inclusive bounds, ``above`` an exclusive lower bound; ``zero_ok`` lets 0
    through whatever the bounds say (e.g. "0 = the model's rate"); ``rule`` is the sentence shown
    when the value is out of range.
    """

    def parse(value: str):
        try:
            number = cast(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {unit}, got {value!r}") from None
        if not math.isfinite(number):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
        if zero_ok and number == 0:
            return number
        if (low is not None and number < low) or (high is not None and number > high) or (
                above is not None and not number > above):
            raise argparse.ArgumentTypeError(f"{rule or 'out of range'}, got {value!r}")
        return number

    parse.__name__ = unit.replace(" ", "_")
    return parse


def setting_number(key: str, unit: str | None = None, zero_ok: bool = False):
    """An argparse ``type`` whose range is the config schema's for ``key`` (ranges live only there)."""
    from demod_voice.config import SETTINGS

    setting = SETTINGS[key]
    cast = int if setting.type == "int" else float
    rule = f"{key.split('.', 1)[1].replace('_', ' ')} goes from {setting.min:g} to {setting.max:g}"
    return number_type(cast, low=setting.min, high=setting.max, zero_ok=zero_ok,
                       unit=unit or ("a whole number" if cast is int else "a number"), rule=rule)


positive_float = number_type(above=0, rule="expected a positive number")
non_negative_float = number_type(low=0, rule="expected a number >= 0")
positive_int = number_type(int, low=1, unit="a whole number", rule="expected a whole number >= 1")
any_float = number_type()


def not_available(feature: str):
    """A handler for commands registered for compatibility but not built yet."""
    from demod_voice.errors import NotAvailableError

    def run(args, ctx):
        raise NotAvailableError(f"'{feature}' is not available yet in this version of demod-voice",
                                hint="see 'demod-voice --help' for the commands that work")

    return run


def cloning_inputs(args) -> tuple[list[str], str | None]:
    """(references, text) of a cloning command (``xtts-zero-shot``, ``styletts2-infer``), checked.

    With --reference or --voice the lone positional is TEXT, not REFERENCE. Reference audio and --voice
    exclude each other, and one of them is needed."""
    from demod_voice.errors import UsageError

    references = list(args.references)
    text = args.text
    positional = args.reference
    if positional is not None and text is None and args.text_file is None and (references or args.voice):
        text = positional
    elif positional is not None:
        references.insert(0, positional)
    if (positional is not None and text is None and args.text_file is None and references == [positional]
            and not Path(positional).expanduser().exists()):
        raise UsageError(f"no reference audio given ('{positional[:40]}' is not a file, so it is not REFERENCE)",
                         hint="pass REFERENCE then TEXT, e.g. me.wav \"Hello there.\", or --voice NAME \"Hello there.\"")
    if args.voice and references:
        raise UsageError("give either reference audio or --voice NAME, not both")
    if not args.voice and not references:
        raise UsageError("no reference audio given", hint="pass REFERENCE (a file or a folder), --reference, or --voice NAME")
    return references, text
