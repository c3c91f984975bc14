"""'Did you mean' for command-line typos: flags, commands and batch columns (argparse gives none on 3.11)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """``" (did you mean --length-scale?)"`` for the closest choices, or an empty string."""
    choices = list(dict.fromkeys(choices))
    close = difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
    if not close and word.startswith("--"):  # piper's --length_scale for our --length-scale
        alias = word.replace("_", "-")
        close = [c for c in choices if c == alias]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def option_strings(parser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings]


def unrecognized_message(parser, extras: list[str]) -> str:
    """argparse's message for arguments it did not take, with a suggestion per unknown flag."""
    options = option_strings(parser)
    notes = []
    for extra in extras:
        if extra.startswith("-") and len(extra) > 1:
            flag = extra.split("=", 1)[0]
            hint = did_you_mean(flag, options)
            if hint:
                notes.append(f"{flag}{hint}")
    message = f"unrecognized arguments: {' '.join(extras)}"
    return message + ("; " + "; ".join(notes) if notes else "")


def invalid_choice_message(message: str) -> str:
    """argparse's "invalid choice: 'sya' (choose from 'say', ...)" with "did you mean 'say'?" added."""
    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not found:
        return message
    choices = re.findall(r"'([^']*)'", found.group(2))
    hint = did_you_mean(found.group(1), choices)
    return message + hint.replace(" (", "; ").removesuffix(")") if hint else message
