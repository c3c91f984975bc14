"""A replica that was SIGKILLed never ran ``__del__``: the next replica on the host stops the api_v2 it left."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.gpt_sovits.conftest import _install, _running
from tests.helpers import cli_env

REPLICA = ("from demod_voice import config\n"
           "from demod_voice.engines.gpt_sovits.replica import OwnServer\n"
           "print(OwnServer(config.load()).pid, flush=True)\n"
           "import time; time.sleep(120)\n")


def test_the_next_replica_stops_the_api_v2_of_a_killed_one(tmp_path, isolated_home, monkeypatch):
    from demod_voice import config
    from demod_voice.engines.gpt_sovits.replica import OwnServer

    install = _install(tmp_path / "GPT-SoVITS")
    monkeypatch.setenv("DEMOD_VOICE_GPT_SOVITS__INSTALL_DIR", str(install))
    dead = subprocess.Popen([sys.executable, "-c", REPLICA], env=cli_env(), stdout=subprocess.PIPE)
    try:
        orphan = int(dead.stdout.readline())
    finally:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
    assert _running(orphan)  # its own session: the replica's death did not take it along
    replicas = isolated_home / "cache" / "demod-voice" / "gpt-sovits" / "replicas"
    assert len(list(replicas.iterdir())) == 1

    server = OwnServer(config.load())
    try:
        assert not _running(orphan)
        assert [f.name for f in replicas.iterdir()] == [server.folder.name]
        assert server.pid != orphan and _running(server.pid)
    finally:
        server.stop()
    gone = time.monotonic() + 10  # stop() signals it; the process may take a moment to exit on a busy machine
    while _running(server.pid) and time.monotonic() < gone:
        time.sleep(0.05)
    assert not _running(server.pid) and not list(replicas.iterdir())
