"""Where things live on disk, and safe path handling for user-supplied names.

Follows the XDG base directory spec so config, data and cache land where a
Linux user expects them; every directory can be overridden through config.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from demod_voice.errors import DemodError, InputError

#: The user of the CLI and of requests that name none (saved voices live under it).
DEFAULT_USER = "local"

APP = "demod-voice"

#: Names that become path components (voice ids, user names, speaker ids).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def config_home() -> Path:
    """``$XDG_CONFIG_HOME/demod-voice`` (default ``~/.config/demod-voice``)."""
    return _xdg("XDG_CONFIG_HOME", ".config") / APP


def data_home() -> Path:
    """``$XDG_DATA_HOME/demod-voice`` (default ``~/.local/share/demod-voice``)."""
    return _xdg("XDG_DATA_HOME", ".local/share") / APP


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/demod-voice`` (default ``~/.cache/demod-voice``)."""
    return _xdg("XDG_CACHE_HOME", ".cache") / APP


def user_config_file() -> Path:
    return config_home() / "config.yaml"


def validate_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is safe to use as a single path component."""
    if not isinstance(name, str) or not SAFE_NAME.match(name) or name in {".", ".."} or ".." in name:
        raise InputError(
            f"invalid {what} {name!r}",
            hint="use 1-64 characters from A-Z a-z 0-9 _ . - starting with a letter or digit",
        )
    return name


def safe_join(root: Path, *names: str, what: str = "name") -> Path:
    """Join validated ``names`` under ``root`` and refuse anything escaping it."""
    for name in names:
        validate_name(name, what)
    root = Path(root).resolve()
    path = root.joinpath(*names).resolve()
    if path != root and root not in path.parents:
        raise InputError(f"{what} {'/'.join(names)!r} escapes {root}", hint="use a plain name")
    return path


# --- writing outputs ----------------------------------------------------------------------
#
# Every writer (CLI, batch, models pull, dataset, caches) goes through these helpers. A regular
# file is written to a temporary file beside it and renamed over it, so a partial file never
# exists. A character device (``/dev/null``, a terminal) or a FIFO cannot be "replaced": renaming
# a regular file over ``/dev/null`` as root is how ``-o /dev/null`` used to destroy it. Those are
# streamed into directly. A symlink is followed, and the file it points to is replaced atomically.

#: The output name that means standard output.
STDOUT = "-"


@dataclass(frozen=True)
class OutputPath:
    """Where an output really goes, decided before any work starts."""

    given: str
    """The path as the user gave it (for messages)."""
    kind: str
    """"stdout", "stream" (a character device or FIFO, written straight into) or "file" (atomic rename)."""
    path: Path | None
    """The device/FIFO, or the real destination file (symlinks resolved); None for stdout."""


def check_output(target: str | os.PathLike, what: str = "output", streams: bool = True) -> OutputPath:
    """Classify ``target`` and refuse what cannot take a file: folders, sockets, block devices, bad parents.

    ``streams=False`` refuses standard output, devices and FIFOs too (a model file must be a real file).
    """
    given = os.fspath(target)
    if given == STDOUT:
        if not streams:
            raise InputError(f"{what} cannot be standard output", hint="give a file name")
        return OutputPath(given, "stdout", None)
    if not given:
        raise InputError(f"{what} path is empty", hint="give a file name, e.g. out.wav")
    real = Path(os.path.realpath(given))  # follows symlinks, also a dangling one to its would-be target
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"cannot use {what} {given}: {exc.strerror}", hint="check the path") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{what} path is a folder: {given}", hint="give a file name, e.g. out.wav")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            if not streams:
                raise InputError(f"{what} {given} is a device or FIFO, not a regular file", hint="give a file name")
            return OutputPath(given, "stream", real)
        if not stat.S_ISREG(st.st_mode):
            kind = "block device" if stat.S_ISBLK(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "special file"
            raise InputError(f"{what} {given} is a {kind}; refusing to write to it",
                             hint="give a regular file, a character device, a FIFO or '-'")
    parent = real.parent
    if not parent.exists():
        raise InputError(f"output folder does not exist: {parent}", hint=f"create it first: mkdir -p {parent}")
    if not parent.is_dir():
        raise InputError(f"output folder is not a folder: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder is not writable: {parent}", hint="choose another output")
    return OutputPath(given, "file", real)


def _write_failed(given: str, exc: OSError) -> DemodError:
    where = "standard output" if given == STDOUT else given
    return DemodError(f"cannot write {where}: {exc.strerror or exc}", hint="check free space and permissions")


def current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, what: str = "output") -> Iterator[Path]:
    """Yield the path to write ``target``'s content to.

    A regular (or new) file: a temporary file beside the real destination, fsynced and renamed over
    it on success, removed on any failure (Ctrl-C included). A character device or FIFO: the device
    itself, written straight into. Standard output has no path: use ``open_output`` for it.
    """
    out = check_output(target, what)
    if out.kind == "stdout":
        raise InputError(f"{what} cannot be written to standard output here", hint="give a file name")
    if out.kind == "stream":
        try:
            yield out.path
        except OSError as exc:
            raise _write_failed(out.given, exc) from None
        return
    real = out.path
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)  # replacing a file keeps its permissions (a 0600 config stays 0600)
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()  # as open() would create it (the server's umask 077 gives 0600)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent)
    except OSError as exc:
        raise InputError(f"cannot write to output folder {real.parent}: {exc.strerror}",
                         hint="choose another output") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, real)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise _write_failed(out.given, exc) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def open_output(target: str | os.PathLike, what: str = "output") -> Iterator[BinaryIO]:
    """A binary file object for ``target``: standard output (``-``), a device/FIFO, or an atomic file."""
    given = os.fspath(target)
    if given == STDOUT:
        out = sys.stdout.buffer
        try:
            yield out
            out.flush()
        except BrokenPipeError:
            raise  # the reader went away (`| head`): the CLI stops quietly
        except OSError as exc:
            raise _write_failed(given, exc) from None
        return
    with atomic_output(given, what) as path:
        try:
            with open(path, "wb") as fh:
                yield fh
        except BrokenPipeError as exc:  # a FIFO whose reader left
            raise _write_failed(given, exc) from None


def atomic_write_bytes(target: str | os.PathLike, data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``target`` (file atomically; device, FIFO or ``-`` streamed)."""
    with open_output(target, what) as fh:
        fh.write(data)
    return Path(target)


#: Older names for the writers above, still used across the code base.
atomic_path = atomic_output


def check_writable_dir(target: str | os.PathLike) -> None:
    """Fail early, with a clear message, when ``target`` cannot take the output (see ``check_output``)."""
    check_output(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """``atomic_write_bytes`` for UTF-8 text (configs, reports, metadata)."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def file_identity(path: str | os.PathLike) -> str:
    """What a result depends on when it depends on a file: a SHA-256 of its contents and its size.

    Used wherever a result depends on a file (cache keys, batch resume hashes, engine versions). The
    contents, not the path or the modification time, so that two nodes of a cluster that hold the same
    model at different paths (or copied at different times) agree on every cache key. Each file is hashed
    once per process while its path, size, inode and mtime stay the same (``_DIGESTS``). A folder or other
    non-regular file keeps the older path:size:mtime form. A missing file has an identity too, so callers
    can key on it and fail later with a clear error.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    if not stat.S_ISREG(st.st_mode):
        return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    stamp = (str(path.resolve()), st.st_size, st.st_ino, st.st_mtime_ns)
    with _DIGESTS_LOCK:
        digest = _DIGESTS.get(stamp)
    if digest is None:
        try:
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            return f"{path}:unreadable"
        with _DIGESTS_LOCK:
            _DIGESTS[stamp] = digest
    return f"sha256:{digest}:{st.st_size}"


#: (resolved path, size, inode, mtime ns) -> SHA-256 of the contents: each model is hashed once per process.
_DIGESTS: dict[tuple, str] = {}
_DIGESTS_LOCK = threading.Lock()
