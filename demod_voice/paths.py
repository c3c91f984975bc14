"""Where things live on disk, and safe path handling for user-supplied names.

Follows the XDG base directory spec so config, data and cache land where a
Linux user expects them; every directory can be overridden through config.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from demod_voice.errors import InputError

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
