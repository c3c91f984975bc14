"""Under ``serve --ray``: a GPT-SoVITS replica that owns its own api_v2 subprocess.

With a managed install (``gpt_sovits.install_dir`` set, no ``gpt_sovits.url``), each replica of the
``engine-gpt-sovits`` deployment starts api_v2 through ``process.start`` on a free port of its node, talks to
it at that URL, and stops it when the replica stops (Serve calls the deployment's ``__del__`` on scale-down,
redeploy and shutdown). Replicas never share one api_v2: its weights are server-wide state and it runs one
``/tts`` at a time, so one server per replica is what makes replicas scale.

Each replica keeps its PID file and log in its own private folder,
``<cache_dir>/gpt-sovits/replicas/<host>-<pid>-<start>/``, named after the replica's process. A replica
that was SIGKILLed never ran ``__del__``; the next replica started on the same host stops the api_v2 such a
dead replica left behind (with the same identity checks as ``gpt-sovits stop``: a reused PID or a look-alike
process is never signalled) and removes its folder.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import socket
from pathlib import Path

from demod_voice.engines.gpt_sovits import process

_LOGGER = logging.getLogger(__name__)


def managed(cfg) -> bool:
    """The replica runs api_v2 itself: an install dir is configured and no external server URL."""
    return bool(cfg.get("gpt_sovits.install_dir")) and not cfg.get("gpt_sovits.url")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:40] or "host"


def _owner_name(pid: int) -> str:
    return f"{_host()}-{pid}-{process._proc_start(pid)}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sweep(replicas: Path, cfg) -> None:
    """Stop the api_v2 of replicas of this host whose process is gone, and drop their folders."""
    prefix = _host() + "-"
    for folder in replicas.iterdir() if replicas.is_dir() else ():
        rest = folder.name[len(prefix):] if folder.name.startswith(prefix) else ""
        pid = rest.split("-", 1)[0]
        if not pid.isdigit() or folder.is_symlink() or folder.name == _owner_name(int(pid)):
            continue  # another host's, not ours to judge, or its owner still runs
        stopped = process.stop(cfg, wait=5.0, folder=folder)
        if stopped is not None:
            _LOGGER.warning("stopped api_v2 (pid %d) left by a replica that died (pid %s)", stopped.pid, pid)
        for name in ("api_v2.pid", "api_v2.log"):
            (folder / name).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass


class OwnServer:
    """This replica's api_v2: started on construction, ``cfg`` points the engine at it, ``stop()`` ends it."""

    def __init__(self, cfg):
        from demod_voice import private_files

        replicas = private_files.folder(private_files.folder(process.state_dir(cfg)) / "replicas")
        _sweep(replicas, cfg)
        self.folder = private_files.folder(replicas / _owner_name(os.getpid()))
        self.state = process.start(cfg, Path(cfg.get("gpt_sovits.install_dir")), _free_port(),
                                   cfg.get("gpt_sovits.start_timeout_s"), folder=self.folder)
        self.cfg = copy.deepcopy(cfg)
        self.cfg.set("gpt_sovits.url", self.state.url, "this replica's api_v2")

    @property
    def pid(self) -> int:
        return self.state.pid

    def running(self) -> bool:
        """api_v2 still runs (the same identity checks as ``stop``)."""
        return process._alive(self.state)

    def stop(self) -> None:
        """Stop api_v2 (SIGTERM, then SIGKILL) and remove the replica's folder; safe to call twice."""
        process.stop(self.cfg, folder=self.folder)
        for name in ("api_v2.pid", "api_v2.log"):
            (self.folder / name).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass
