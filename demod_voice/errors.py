"""The error hierarchy every user-facing failure goes through.

A ``DemodError`` carries a one-line message naming what was wrong, an optional
hint saying what to do, and the process exit code the CLI uses:

* 2 -- usage or input error (bad argument, missing file, invalid config)
* 1 -- runtime failure (an engine crashed, a download failed)
* 130 -- interrupted (Ctrl-C), handled by the CLI itself
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class DemodError(Exception):
    """Base class: a message for the user, a hint, and an exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None,
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param
        """The request field at fault, where one is (HTTP answers carry it as OpenAI's ``param``)."""
        self.code = code
        """A short machine-readable reason such as ``model_not_found`` (OpenAI's ``code``), or None."""
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict:
        """JSON-friendly form, used by the server and batch reports."""
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class UsageError(DemodError):
    """A bad command-line argument or combination of arguments."""

    exit_code = EXIT_USAGE


class InputError(DemodError):
    """A missing, unreadable or invalid input (file, text, model, voice)."""

    exit_code = EXIT_USAGE


class ConfigError(InputError):
    """An invalid configuration value; the message names the key path."""


class ModelNotFoundError(InputError):
    """A model or voice that cannot be found locally."""


class UnsafeCheckpointError(InputError):
    """A checkpoint that would need arbitrary unpickling to load."""


class NotAvailableError(DemodError):
    """A capability that is not installed (missing extra) or not built yet."""

    exit_code = EXIT_USAGE


class EngineError(DemodError):
    """An engine failed while running (runtime failure, exit 1)."""

    exit_code = EXIT_FAILURE


class UpstreamError(EngineError):
    """Another server (a remote engine, GPT-SoVITS, a mirror) answered badly: an error status, too much,
    garbage or an audio bomb. 502 over HTTP. ``message`` is in our words; ``internal`` (its URL, its own
    error text) goes to the audit log and to admins only."""

    def __init__(self, message: str, hint: str | None = None, *, internal: str | None = None):
        super().__init__(message, hint)
        self.internal = internal


def install_hint(extra: str) -> str:
    """The command that adds an extra (the package is not on a package index: it installs from the source)."""
    return (f"install the '{extra}' extra: 'make install EXTRAS={extra}' in a checkout, "
            f"or pip install '.[{extra}]' from the source folder (docs/install.md)")


def missing_extra(package: str, extra: str) -> NotAvailableError:
    """The error for an optional dependency that is not installed."""
    return NotAvailableError(f"the Python package '{package}' is not installed", hint=install_hint(extra))


class HTTPProblem(DemodError):
    """An error with an explicit HTTP status (limits, auth, conflicts); the server answers with that status.

    It lives here, not in server/, so request services outside server/ (speech-to-text) can raise it
    without importing the server.
    """

    def __init__(self, status: int, message: str, hint: str | None = None, *, param: str | None = None,
                 code: str | None = None):
        super().__init__(message, hint, param=param, code=code)
        self.status = status


class LimitError(HTTPProblem):
    """A configured limit was exceeded (audio too long, a quota full): 413 or 429 over HTTP, exit 2 in the CLI."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None, status: int = 413):
        super().__init__(status, message, hint)
