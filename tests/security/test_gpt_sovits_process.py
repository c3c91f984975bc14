"""GPT-SoVITS process safety (#35 item 5): ``gpt-sovits stop`` signals only the process ``start`` started, and
the PID and log files are never written through a symlink. The server is the api_v2 stand-in of
tests/gpt_sovits, started by the real CLI; the look-alike is a real process with the same command line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from tests.gpt_sovits.conftest import _free_port, _install, _running
from tests.helpers import run_cli


def _env(tmp_path) -> dict:
    return {f"XDG_{k}_HOME": str(tmp_path / k.lower()) for k in ("CONFIG", "DATA", "CACHE")}


def _state_dir(tmp_path):
    return tmp_path / "cache" / "demod-voice" / "gpt-sovits"


def _look_alike(install, port: int) -> subprocess.Popen:
    """``python api_v2.py -a 127.0.0.1 -p PORT`` in the install dir, as the real one runs (it only sleeps)."""
    script = install / "lookalike" / "api_v2.py"
    script.parent.mkdir()
    script.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script), "-a", "127.0.0.1", "-p", str(port)], cwd=install)
    time.sleep(0.3)
    return proc


def test_stop_leaves_a_look_alike_alive(tmp_path):
    env = _env(tmp_path)
    install = _install(tmp_path / "gsv").resolve()
    port = _free_port()
    started = run_cli("gpt-sovits", "start", "--install-dir", install, "--port", port, "--timeout", "60", env=env)
    assert started.returncode == 0, started.stderr.decode()
    pid_file = _state_dir(tmp_path) / "api_v2.pid"
    real = json.loads(pid_file.read_text())
    assert real["proc_start"] is not None
    look = _look_alike(install, port)
    try:
        # the PID file now names the look-alike (a reused PID, or an edited file), with the real one's record
        for forged in ({**real, "pid": look.pid}, {**real, "pid": look.pid, "proc_start": None},
                       {**real, "pid": look.pid, "port": port + 1}):
            pid_file.write_text(json.dumps(forged))
            stopped = run_cli("gpt-sovits", "stop", env=env)
            assert stopped.returncode in (0, 1), stopped.stderr.decode()
            assert look.poll() is None, f"the look-alike was signalled ({forged})"
        # the real record stops the real server
        pid_file.write_text(json.dumps(real))
        stopped = run_cli("gpt-sovits", "stop", env=env)
        assert stopped.returncode == 0 and f"pid {real['pid']}".encode() in stopped.stderr
        assert not _running(real["pid"])
        assert look.poll() is None
    finally:
        look.kill()
        look.wait(10)
        if _running(real["pid"]):
            os.kill(real["pid"], 9)


def test_symlinked_pid_and_log_files_are_not_written_through(tmp_path):
    env = _env(tmp_path)
    install = _install(tmp_path / "gsv")
    folder = _state_dir(tmp_path)
    folder.mkdir(parents=True, mode=0o755)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (folder / "api_v2.log").symlink_to(victim)
    refused = run_cli("gpt-sovits", "start", "--install-dir", install, "--port", _free_port(), "--timeout", "60", env=env)
    assert refused.returncode != 0 and b"symlink" in refused.stderr
    assert victim.read_text() == "precious\n"

    (folder / "api_v2.log").unlink()
    (folder / "api_v2.pid").symlink_to(victim)
    started = run_cli("gpt-sovits", "start", "--install-dir", install, "--port", _free_port(), "--timeout", "60", env=env)
    try:
        assert started.returncode == 0, started.stderr.decode()
        assert victim.read_text() == "precious\n"
        assert not (folder / "api_v2.pid").is_symlink()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "api_v2.pid").stat().st_mode) == 0o600
    finally:
        run_cli("gpt-sovits", "stop", env=env)


@pytest.mark.parametrize("content", ["not json", json.dumps({"pid": 1, "port": 9880, "install_dir": "/", "started": 0})])
def test_a_forged_pid_file_never_signals_init(tmp_path, content):
    env = _env(tmp_path)
    folder = _state_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "api_v2.pid").write_text(content)
    stopped = run_cli("gpt-sovits", "stop", env=env)
    assert stopped.returncode in (0, 1)


def test_the_replica_sweep_never_signals_a_look_alike_nor_follows_a_symlink(tmp_path, isolated_home, monkeypatch):
    """``serve --ray``: a replica's start stops what dead replicas left, with ``stop``'s identity checks."""
    from demod_voice import config
    from demod_voice.engines.gpt_sovits import replica

    install = _install(tmp_path / "gsv").resolve()
    monkeypatch.setenv("DEMOD_VOICE_GPT_SOVITS__INSTALL_DIR", str(install))
    replicas = isolated_home / "cache" / "demod-voice" / "gpt-sovits" / "replicas"
    port = _free_port()
    look = _look_alike(install, port)
    dead = replicas / f"{replica._host()}-999999999-1"  # a replica that is gone, its PID file naming the look-alike
    dead.mkdir(parents=True)
    (dead / "api_v2.pid").write_text(json.dumps({"pid": look.pid, "port": port, "install_dir": str(install),
                                                 "started": 0, "proc_start": 1}))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "api_v2.pid").write_text(json.dumps({"pid": look.pid, "port": port, "install_dir": str(install),
                                                   "started": 0}))
    (replicas / f"{replica._host()}-999999998-1").symlink_to(victim)
    try:
        server = replica.OwnServer(config.load())
        server.stop()
        assert look.poll() is None, "the look-alike was signalled"
        assert not dead.exists()
        assert (victim / "api_v2.pid").exists()  # a symlinked folder is not ours: skipped, never followed
    finally:
        look.kill()
        look.wait(10)
