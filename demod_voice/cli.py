"""The ``demod-voice`` command line.

Parses arguments, hands them to one function per command (in
``demod_voice.commands``), and maps ``DemodError`` to an ``error:`` line and
an exit code: 0 success, 1 runtime failure, 2 usage or input error, 130
interrupted. Tracebacks only with ``-v``. Nothing heavy is imported here, so
``demod-voice --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from demod_voice import __version__
from demod_voice.errors import EXIT_FAILURE, EXIT_USAGE, DemodError, UsageError

#: Command modules under ``demod_voice.commands`` beside the engines' own (``registry.commands()``, listed
#: first), in help order. Each defines ``register(subparsers, common)`` and sets ``func`` on its parser(s).
COMMAND_MODULES = (
    "say",
    "batch",
    "train",
    "health",
    "voices",
    "models",
    "serve",
    "config",
)


@dataclass
class Context:
    """What every command gets: parsed args, config (loaded on first use), verbosity."""

    args: argparse.Namespace
    flags: dict = field(default_factory=dict)
    _cfg: Any = None

    @property
    def verbose(self) -> bool:
        return bool(getattr(self.args, "verbose", 0))

    @property
    def quiet(self) -> bool:
        return bool(getattr(self.args, "quiet", False))

    @property
    def cfg(self):
        if self._cfg is None:
            from demod_voice import config

            self._cfg = config.load(getattr(self.args, "config", None), flags=self.flags)
        return self._cfg

    @property
    def device(self) -> str:
        return self.cfg.get("device")

    def say(self, message: str) -> None:
        """A status line on stderr, unless ``-q``."""
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """No prefix matching of long options: ``--text`` must not silently mean ``--text-file``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.set_defaults(_parser=self)  # the deepest command's parser wins: its usage goes with its errors

    def error(self, message: str):
        from demod_voice.suggest import invalid_choice_message

        super().error(invalid_choice_message(message))

    def parse_args(self, args=None, namespace=None):
        """Unknown arguments are reported by the command that got them (its usage, a did-you-mean)."""
        from demod_voice.suggest import unrecognized_message

        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            getattr(parsed, "_parser", self).error(unrecognized_message(getattr(parsed, "_parser", self), extras))
        return parsed


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("global options")
    device = group.add_mutually_exclusive_group()
    device.add_argument("--gpu", dest="device", action="store_const", const="gpu",
                        default=default, help="run engines on the GPU (falls back to CPU with a notice)")
    device.add_argument("--cpu", dest="device", action="store_const", const="cpu",
                        default=default, help="force the CPU")
    group.add_argument("--config", metavar="PATH", default=default, help="config file (YAML) layered over the user config")
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if suppress else 0,
                       help="more detail on stderr; tracebacks on errors")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False,
                       help="only errors on stderr; no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="demod-voice",
        allow_abbrev=False,
        description="Offline-first voice cloning and text-to-speech: XTTS-v2, Piper, RVC, batch jobs and a server.",
        epilog="Exit codes: 0 success, 1 runtime failure, 2 usage or input error, 130 interrupted. "
               "Run 'demod-voice COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"demod-voice {__version__}")
    parser.add_argument("--list_models", "--list-models", dest="list_models", action="store_true",
                        help="the same as 'demod-voice models list' (coqui tts's flag)")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from demod_voice.synthesis import registry

    for name in (*registry.commands(), *(f"demod_voice.commands.{n}" for n in COMMAND_MODULES)):
        importlib.import_module(name).register(sub, common)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR if quiet else logging.WARNING if not verbose else level)
    logging.getLogger("demod_voice").setLevel(level)
    from demod_voice import progress

    progress.quiet_third_party(verbose, quiet)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        label = {"WARNING": "notice"}.get(record.levelname, record.levelname.lower())
        return f"{label}: {record.getMessage()}"


def format_error(exc: DemodError) -> str:
    return f"error: {exc.message}" + (f"; {exc.hint}" if exc.hint else "")


def _passive_thread_pools() -> None:
    """Let idle OpenMP threads sleep instead of spin (before torch loads; an explicit setting wins).

    torch's OpenMP pool spins between parallel regions by default. Measured on
    the 2-core development machine with other processes running: a 4-row GPT
    step (batched XTTS decoding) took 7-9x a 1-row step with spinning and 1.3x
    with passive waiting (docs/benchmarks.md). Worker processes inherit it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _check_utf8(argv: Sequence[str]) -> None:
    """Refuse arguments that are not valid UTF-8 (they reach Python as lone surrogates and break later)."""
    for index, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise UsageError(f"argument {index} ({shown!r}) is not valid UTF-8",
                             hint="pass text as UTF-8 (or through --text-file / standard input), "
                                  "and give files UTF-8 names") from None


class _Stdout:
    """Wraps ``sys.stdout`` so a failed write (``/dev/full``, a closed descriptor) is a clear DemodError."""

    def __init__(self, inner):
        self._inner = inner
        self.failed = False

    def _guard(self, method: str, *args):
        try:
            return getattr(self._inner, method)(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            self.failed = True
            raise DemodError(f"cannot write standard output: {exc.strerror or exc}",
                             hint="check free space, or write to a file with --output") from None

    def write(self, text):
        return self._guard("write", text)

    def flush(self):
        return self._guard("flush")

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _release_stdout() -> None:
    """Point descriptor 1 at /dev/null so the interpreter's final flush of stdout cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    _passive_thread_pools()
    try:
        _check_utf8(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(format_error(exc), file=sys.stderr)
        return exc.exit_code
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", 0) or 0
    _setup_logging(verbose, getattr(args, "quiet", False))
    if getattr(args, "list_models", False) and not getattr(args, "func", None):
        from demod_voice.commands import models as models_command

        args.func, args.json = models_command.run_list, False
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from demod_voice import interrupts

    interrupts.install()
    flags = {"device": getattr(args, "device", None)}
    ctx = Context(args=args, flags={k: v for k, v in flags.items() if v is not None})
    stdout = sys.stdout = _Stdout(sys.stdout)
    try:
        code = int(args.func(args, ctx) or 0)
        sys.stdout.flush()  # a full or closed stdout fails here, not in the interpreter's exit
        return code
    except DemodError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(format_error(exc), file=sys.stderr)
        if stdout.failed or exc.message.startswith("cannot write standard output"):
            _release_stdout()
        return exc.exit_code
    except KeyboardInterrupt as exc:
        from demod_voice import interrupts

        interrupts.quiet_teardown()
        code, line = interrupts.exit_code(exc)
        print(line, file=sys.stderr)
        return code
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        _release_stdout()
        return EXIT_FAILURE
    except Exception as exc:  # the last resort: say what happened, hide the traceback unless -v
        from demod_voice.needs import from_import_error

        missing = from_import_error(exc)  # an optional package that is not installed is not a crash
        if missing is not None:
            print(format_error(missing), file=sys.stderr)
            return missing.exit_code
        return _unexpected(exc, verbose)
    finally:
        if sys.stdout is stdout:
            sys.stdout = stdout._inner


def _unexpected(exc: BaseException, verbose: int) -> int:
    """The last resort: say what happened, hide the traceback unless -v."""
    if verbose:
        import traceback

        traceback.print_exc()
    print(f"error: unexpected {type(exc).__name__}: {exc}; run with -v for the traceback and please report it",
          file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
