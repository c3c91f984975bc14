"""Real Ray runs for the tests: a ``serve --ray`` server in a subprocess, scoped process cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.helpers import REPO, cli_env
from tests.server.conftest import free_port


def short_tmp() -> Path:
    """A short folder for Ray's session files (its socket paths must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="dvray-", dir="/tmp"))


def _names(proc: Path, marker: str) -> bool:
    """The process's command line or one of its open files names ``marker`` (Ray's agents rename themselves
    to ``ray::...``, but keep their logs in the session folder open)."""
    if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
        return True
    try:
        return any(marker in os.readlink(fd) for fd in (proc / "fd").iterdir())
    except OSError:
        return False


def scoped_processes(marker: str) -> list[int]:
    """Processes that name ``marker`` (our temp folder): ours, never another session's."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if int(entry.parent.name) != os.getpid() and _names(entry.parent, marker):
                state = (entry.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill_scoped(marker: str) -> None:
    for pid in scoped_processes(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def descendants(pid: int) -> list[int]:
    from demod_voice.server.ray_serve.run import descendants as below

    return below(pid)


def alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.append(pid)
    return out


class RayServer:
    """``demod-voice serve --ray ADDRESS`` with ``config`` in ``home``; Ray's files under ``ray_tmp``."""

    def __init__(self, home: Path, config: str, address: str = "local", ray_tmp: Path | None = None,
                 env_extra: dict | None = None):
        for sub in ("config", "data", "cache"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        (home / "server.yaml").write_text(config)
        self.home = home
        self.ray_tmp = ray_tmp or short_tmp()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = cli_env({"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                       "XDG_CACHE_HOME": str(home / "cache"), "RAY_TMPDIR": str(self.ray_tmp)})
        for name in list(env):
            if name.startswith("DEMOD_VOICE_"):
                del env[name]
        env.update(env_extra or {})
        self.log = home / "server.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "serve", "--config",
                                      str(home / "server.yaml"), "--port", str(self.port), "--ray", address],
                                     env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, cwd=REPO)

    def wait_ready(self, headers: dict, deployment: str, replicas: int, timeout: float = 600) -> dict:
        """Block until /health answers and ``deployment`` has ``replicas`` RUNNING; its report."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.log.read_text()[-4000:])
            report = self.deployment(headers, deployment)
            if report and report.get("replica_states", {}).get("RUNNING") == replicas:
                return report
            time.sleep(1)
        raise RuntimeError("not ready: " + self.log.read_text()[-4000:])

    def deployment(self, headers: dict, deployment: str) -> dict | None:
        try:
            res = httpx.get(self.url + "/health", headers=headers, timeout=5)
        except httpx.HTTPError:
            return None
        if res.status_code != 200:
            return None
        return (res.json().get("ray_serve") or {}).get("deployments", {}).get(deployment)

    def replicas(self, headers: dict, engine: str) -> list[dict]:
        """The replicas with pids and nodes (``/api/engines`` for an admin)."""
        res = httpx.get(self.url + "/api/engines", headers=headers, timeout=10)
        res.raise_for_status()
        return res.json()["engines"][engine]["deployment"].get("replicas", [])

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM, as a service manager would; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
