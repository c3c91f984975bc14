"""Ctrl-C and SIGTERM end a command with one line, its exit code, no traceback and no temp files left.

SIGTERM is turned into ``Terminated`` (a ``KeyboardInterrupt``), so the ``finally`` blocks and context
managers that remove temp folders run on both signals, exactly as for Ctrl-C. ``quiet_teardown`` then
silences what C callbacks (libsndfile's virtual I/O, PyAV) print while the interpreter unwinds a half-written
file: "Exception ignored from cffi callback" is noise once the command has said "interrupted".
"""

from __future__ import annotations

import signal
import sys

EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind like Ctrl-C, exit 143."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def install() -> None:
    """Raise ``Terminated`` on SIGTERM in the main thread (commands that serve install their own handler)."""
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding program): leave its handler alone
        pass


def quiet_teardown() -> None:
    """After an interrupt: no "Exception ignored ..." reports from callbacks while files close, and no second
    signal traceback."""
    sys.unraisablehook = lambda unraisable: None
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:
            pass


def exit_code(exc: KeyboardInterrupt) -> tuple[int, str]:
    """(exit code, the one line) for an interrupt."""
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, "terminated"
    return 130, "interrupted"
