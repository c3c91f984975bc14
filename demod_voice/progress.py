"""Progress bars and third-party chatter: what long CLI work shows on stderr.

A bar (tqdm) appears only when stderr is a terminal, never with ``-q``, and only
once the work has run for ``DELAY_S`` seconds, so short commands stay silent and
pipes and logs never get carriage-return noise. When stderr is not a terminal (a
log file, a service), long work writes one plain line every ``RECORD_S`` seconds
instead (``progress_records.Records``), so a log never stays silent for minutes. ``quiet_third_party`` decides what
other libraries may print: their warnings and log lines are hidden with ``-q``,
shown as they come by default, and shown in full with ``-v``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator

#: Seconds of work before a bar appears (shorter work shows none).
DELAY_S = 2.0
#: Off a terminal: seconds between one-line progress records.
RECORD_S = 10.0

_state: dict = {"quiet": False, "level": logging.WARNING}

#: Loggers of libraries that print retries and notices of their own.
THIRD_PARTY_LOGGERS = ("huggingface_hub", "transformers", "TTS", "httpx", "urllib3", "numba", "faiss")


def enabled(quiet: bool | None = None, stream=None) -> bool:
    """True when a bar may be drawn: not quiet, and stderr (or ``stream``) is a terminal."""
    if quiet if quiet is not None else _state["quiet"]:
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def bar(total: int | None = None, *, desc: str, unit: str, quiet: bool | None = None, **kwargs):
    """A tqdm bar on stderr, shown after ``DELAY_S`` seconds; off a terminal, one-line records every
    ``RECORD_S`` seconds; nothing with ``-q``. Both have tqdm's ``update``/``write``/``close``."""
    from tqdm import tqdm

    if not (quiet if quiet is not None else _state["quiet"]) and not enabled(False):
        from demod_voice.progress_records import Records

        return Records(total, desc=desc, unit=unit, every=kwargs.pop("every", RECORD_S))

    sized = _columns() > 0  # a terminal that reports no size (0x0) would hide the bar: assume 80x24
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled(quiet),
                delay=kwargs.pop("delay", DELAY_S), leave=kwargs.pop("leave", False), dynamic_ncols=sized,
                ncols=None if sized else 80, nrows=None if sized else 24, **kwargs)


def note(text: str) -> None:
    """One status line on stderr for a long step (a self-test, a download), unless ``-q``."""
    if not _state["quiet"]:
        print(text, file=sys.stderr, flush=True)


def _columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


def iterate(items: Iterable, total: int | None = None, *, desc: str, unit: str,
            quiet: bool | None = None) -> Iterator:
    """Yield ``items`` while counting them on a bar (``total`` may be an estimate; the bar grows past it)."""
    progress = bar(total, desc=desc, unit=unit, quiet=quiet)
    try:
        for item in items:
            yield item
            if progress.total is not None and progress.n + 1 > progress.total:
                progress.total = progress.n + 1
            progress.update(1)
    finally:
        progress.close()


def quiet_third_party(verbose: int, quiet: bool) -> None:
    """Route other libraries' warnings and logs by our verbosity: hidden with -q, all shown with -v.

    Their own stderr handlers are removed so each line appears once, formatted like ours.
    Worker processes inherit the choice through ``PYTHONWARNINGS``.
    """
    _state["quiet"] = quiet
    if quiet:
        warnings.simplefilter("ignore")
        os.environ["PYTHONWARNINGS"] = "ignore"
    elif verbose:
        warnings.simplefilter("default")
    level = _state["level"] = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def adopt_logger(name: str) -> None:
    """Drop the handlers a library put on its own logger (it then prints once, through ours)."""
    logger = logging.getLogger(name)
    logger.handlers[:] = []
    logger.propagate = True
    logger.setLevel(_state["level"])
