"""Argument helpers shared by several commands."""

from __future__ import annotations

import argparse

from demod_voice.audio import FORMATS


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", metavar="TEXT", help="text to speak; '-' reads standard input")
    parser.add_argument("--text-file", metavar="FILE", help="read the text from a UTF-8 file instead")


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, type=str.lower, metavar="FORMAT",
                        help=f"output format ({', '.join(FORMATS)}); default: from the --output suffix")


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return number


def not_available(feature: str):
    """A handler for commands registered for compatibility but not built yet."""
    from demod_voice.errors import NotAvailableError

    def run(args, ctx):
        raise NotAvailableError(f"'{feature}' is not available yet in this version of demod-voice",
                                hint="see 'demod-voice --help' for the commands that work")

    return run
