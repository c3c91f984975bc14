"""Bind the Wyoming unix socket with the mode and group its clients need.

``serve`` sets ``umask 077`` (every file it writes is private), and ``bind()`` honours the
umask, so the socket would be 0700: only the server's own user could connect, never Home
Assistant running as another user. Connecting needs write permission on the socket, so it is
set explicitly after bind: ``wyoming.socket_mode`` (default 0660, owner and group) and, when
``wyoming.socket_group`` names one, that group (the process must belong to it, or be root).
Under systemd the NixOS module gives the group through the socket's folder instead (setgid).
"""

from __future__ import annotations

import grp
import os
import shutil
import socket
from pathlib import Path

from demod_voice.errors import UsageError

DEFAULT_MODE = "0660"


def parse_mode(text: str) -> int:
    """``"0660"`` -> 0o660; only permission bits (no setuid, setgid or sticky)."""
    try:
        mode = int(str(text), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise UsageError(f"wyoming.socket_mode {text!r} is not an octal permission mode",
                         hint="use e.g. 0660 (owner and group may connect) or 0600 (owner only)")
    return mode


def bind_unix(path: Path, mode: str = DEFAULT_MODE, group: str | None = None) -> socket.socket:
    """A bound (not yet listening) AF_UNIX socket at ``path`` with ``mode`` and, if given, ``group``."""
    bits = parse_mode(mode)
    gid = None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise UsageError(f"wyoming.socket_group {group!r} is not a group on this machine",
                             hint="name an existing group (e.g. hass) or leave it empty") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        try:
            if gid is not None:
                shutil.chown(path, group=gid)
            os.chmod(path, bits)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise UsageError(f"cannot give the Wyoming socket {path} group {group} and mode {mode}: {exc.strerror}",
                             hint="the server's user must belong to wyoming.socket_group") from None
    except BaseException:
        sock.close()
        raise
    return sock
