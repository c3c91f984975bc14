"""Small private state files (PID files, logs) that another local user must not redirect.

A symlink planted where a PID file or log will be written would make us write through it (into the victim's
file) or read a PID chosen by someone else. Here the folder is made 0700 and must be a real folder we own,
and every file is opened with ``O_NOFOLLOW``: a symlink in its place is an error, never followed.
"""

from __future__ import annotations

import os
from pathlib import Path

from demod_voice.errors import DemodError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def folder(path: Path) -> Path:
    """``path`` as a private folder (created 0700; an existing one is closed to 0700); refused when it is a
    symlink or someone else's."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    import stat

    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise DemodError(f"{path} is not a plain folder (a symlink?); refusing to keep state in it",
                         hint="remove it; it is recreated")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise DemodError(f"{path} belongs to another user; refusing to keep state in it", hint="remove it")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def open_append(path: Path):
    """A binary file opened for appending, created 0600; a symlink at ``path`` is refused (``OSError``)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600)
    except OSError as exc:
        raise DemodError(f"cannot open {path}: {exc.strerror} (a symlink is never followed)",
                         hint="remove it; it is recreated") from None
    return os.fdopen(fd, "ab")


def write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a new 0600 temp file (never an existing one), then a rename, which
    replaces a symlink at ``path`` instead of writing through it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read(path: Path, limit: int = 1 << 16) -> bytes:
    """At most ``limit`` bytes of ``path``; ``OSError`` when it is a symlink or missing."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit)
