"""The Wyoming unix socket's mode and group (demod_voice.wyoming.unix_socket), under serve's umask 077."""

from __future__ import annotations

import os
import stat

import pytest

from demod_voice.errors import UsageError
from demod_voice.wyoming.unix_socket import bind_unix, parse_mode
from tests.wyoming.test_cli_unix import other_group


@pytest.fixture
def private_umask():
    old = os.umask(0o077)  # as `serve` sets it
    yield
    os.umask(old)


def test_socket_gets_mode_and_group_despite_umask(tmp_path, private_umask):
    group = other_group()
    path = tmp_path / "wyoming.sock"
    sock = bind_unix(path, "0660", group.gr_name)
    try:
        info = os.lstat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == group.gr_gid
    finally:
        sock.close()
    other = tmp_path / "private.sock"
    sock = bind_unix(other, "0600")
    try:
        assert stat.S_IMODE(os.lstat(other).st_mode) == 0o600 and os.lstat(other).st_gid == os.getgid()
    finally:
        sock.close()


def test_bad_mode_and_unknown_group_are_usage_errors(tmp_path):
    for text in ("rw", "4755", "-1", "1000", "0x1b6"):
        with pytest.raises(UsageError, match="octal permission mode"):
            parse_mode(text)
    assert parse_mode("660") == 0o660 and parse_mode("0640") == 0o640
    with pytest.raises(UsageError, match="is not a group on this machine"):
        bind_unix(tmp_path / "x.sock", "0660", "no-such-group-demod")
    assert not (tmp_path / "x.sock").exists()
