"""Where things live on disk, and safe path handling for user-supplied names.

Follows the XDG base directory spec so config, data and cache land where a
Linux user expects them; every directory can be overridden through config.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from demod_voice.errors import DemodError, InputError

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


# --- files: identity and atomic writes ---------------------------------------------------

def file_identity(path: str | os.PathLike) -> str:
    """What changes when a file is replaced: resolved path, size and modification time (ns).

    Used wherever a result depends on a file (cache keys, batch resume hashes, engine versions).
    A missing file has an identity too, so callers can key on it and fail later with a clear error.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed
    and ``target`` is left untouched.
    """
    target = Path(target)
    check_writable_dir(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write to output folder {target.parent}: {exc.strerror}",
                         hint="choose another --output") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise DemodError(f"cannot write {target}: {exc.strerror or exc}", hint="check free space and permissions") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def check_writable_dir(target: str | os.PathLike) -> None:
    """Fail early, with a clear message, when ``target``'s folder cannot take a file."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(f"output path is a folder: {target}", hint="give a file name, e.g. out.wav")
    if not parent.exists():
        raise InputError(f"output folder does not exist: {parent}", hint=f"create it first: mkdir -p {parent}")
    if not parent.is_dir():
        raise InputError(f"output folder is not a folder: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder is not writable: {parent}", hint="choose another --output")


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """``atomic_write_bytes`` for UTF-8 text (configs, reports, metadata)."""
    return atomic_write_bytes(target, text.encode("utf-8"))
