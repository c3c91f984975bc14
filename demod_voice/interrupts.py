"""Ctrl-C and SIGTERM end a command with one line, its exit code, no traceback and no temp files left.

SIGTERM is turned into ``Terminated`` (a ``KeyboardInterrupt``), so the ``finally`` blocks and context
managers that remove temp folders run on both signals, exactly as for Ctrl-C. ``quiet_teardown`` then
silences what C callbacks (libsndfile's virtual I/O, PyAV) print while the interpreter unwinds a half-written
file: "Exception ignored from cffi callback" is noise once the command has said "interrupted".
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind like Ctrl-C, exit 143."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def _redeliver_swallowed(unraisable) -> None:
    """A Ctrl-C or SIGTERM that lands inside a C callback (libsndfile's virtual I/O writing an mp3) is only
    reported there ("Exception ignored from cffi callback") and the command would write on to the end and exit
    0. Send the signal again a moment later, from another thread (sent from here, its handler would run inside
    this hook and be swallowed once more); should it land in a callback again, this repeats until it lands in
    ordinary Python, which unwinds as usual."""
    import threading

    exc = unraisable.exc_value
    if not isinstance(exc, KeyboardInterrupt):
        _previous_hook(unraisable)
        return
    sig = signal.SIGINT
    if isinstance(exc, Terminated):
        signal.signal(signal.SIGTERM, _on_sigterm)  # it had reset itself to the default (which would kill us)
        sig = signal.SIGTERM
    timer = threading.Timer(0.01, os.kill, (os.getpid(), sig))
    timer.daemon = True
    timer.start()


_previous_hook = sys.unraisablehook


def install() -> None:
    """Raise ``Terminated`` on SIGTERM in the main thread (commands that serve install their own handler), and
    re-deliver an interrupt that a C callback swallowed."""
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding program): leave its handler alone
        return
    sys.unraisablehook = _redeliver_swallowed


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
