"""GPT-SoVITS through its own server: the api_v2 process's lifecycle and its HTTP API.

GPT-SoVITS is not installed into this environment (its own checkout pins its own torch and models). The user
installs it; ``demod-voice gpt-sovits start`` runs its ``api_v2.py`` on 127.0.0.1 with a PID file and a log
under ``<cache_dir>/gpt-sovits/``, waits until it answers, and ``stop`` / ``status`` manage it. The engine speaks
api_v2's documented API: ``POST /tts`` (JSON: text, text_lang, ref_audio_path, prompt_text, prompt_lang, top_k,
top_p, temperature, speed_factor, media_type, streaming_mode), ``GET /set_gpt_weights`` and
``GET /set_sovits_weights`` (``weights_path``). Errors come back as HTTP 400 with ``{"message", "Exception"}``.

With ``media_type=wav`` and ``streaming_mode`` on, api_v2 sends one WAV header and then raw 16-bit PCM as it is
made; without streaming the body is one WAV file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demod_voice.audio import Audio
from demod_voice.errors import EngineError, InputError, UpstreamError

_LOGGER = logging.getLogger(__name__)

#: api_v2's text languages (``tts_config.languages`` of v2 and later): a request's language maps onto these.
LANGUAGES = ("zh", "en", "ja", "ko", "yue", "all_zh", "all_ja", "all_yue", "all_ko", "auto", "auto_yue")


def api_language(language: str | None) -> str:
    """``en_US`` / ``en-us`` / ``EN`` -> ``en``; unknown codes are refused with the list."""
    code = (language or "en").replace("-", "_").lower()
    if code in LANGUAGES:
        return code
    base = code.split("_")[0]
    if base in LANGUAGES:
        return base
    raise InputError(f"GPT-SoVITS does not speak language '{language}'", hint="use one of " + ", ".join(LANGUAGES))


# --- the process -----------------------------------------------------------------------------------

def state_dir(cfg) -> Path:
    return Path(cfg.cache_dir) / "gpt-sovits"


@dataclass
class ServerState:
    """What ``start`` wrote to the PID file."""

    pid: int
    port: int
    install_dir: str
    started: float
    proc_start: int | None = None
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22): a reused PID differs."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def read_state(cfg, folder: Path | None = None) -> ServerState | None:
    """The PID file in ``folder`` (default ``state_dir(cfg)``; a Serve replica keeps its own folder)."""
    from demod_voice import private_files

    try:
        data = json.loads(private_files.read((folder or state_dir(cfg)) / "api_v2.pid", limit=4096))
        start = data.get("proc_start")
        return ServerState(int(data["pid"]), int(data["port"]), str(data["install_dir"]), float(data["started"]),
                           int(start) if start is not None else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _proc_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None without /proc."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(state: ServerState) -> bool:
    """The PID is the process ``start`` started, and it still runs.

    All of these must match: its start time (a reused PID has another), ``api_v2.py`` with the recorded port on
    its command line, and its working folder the recorded install dir. A look-alike process is never signalled.
    """
    try:
        os.kill(state.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path(f"/proc/{state.pid}")
    if not proc.is_dir():
        return True  # no /proc (macOS): only the PID file can be trusted
    try:
        stat = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
        args = (proc / "cmdline").read_bytes().split(b"\0")
        cwd = os.readlink(proc / "cwd")
    except (OSError, IndexError):
        return False
    if stat[0] == "Z":  # a zombie has exited; its parent has not collected it yet
        return False
    port_given = any(a == b"-p" and b == str(state.port).encode() for a, b in zip(args, args[1:]))
    return (state.proc_start is not None and int(stat[19]) == state.proc_start and b"api_v2.py" in args
            and port_given and cwd == state.install_dir)


def server_url(cfg) -> str:
    """``gpt_sovits.url``, else the running server's, else the configured port on 127.0.0.1."""
    url = cfg.get("gpt_sovits.url")
    if url:
        return url.rstrip("/")
    state = read_state(cfg)
    return state.url if state is not None and _alive(state) else f"http://127.0.0.1:{cfg.get('gpt_sovits.port')}"


def check_install(install_dir: Path, config: str) -> Path:
    """The install dir holds api_v2.py and its config, or a clear error naming what is missing."""
    if not install_dir.is_dir():
        raise InputError(f"GPT-SoVITS install dir not found: {install_dir}",
                         hint="clone https://github.com/RVC-Boss/GPT-SoVITS, install it, and pass --install-dir")
    if not (install_dir / "api_v2.py").is_file():
        raise InputError(f"{install_dir} is not a GPT-SoVITS install: it has no api_v2.py",
                         hint="pass the folder of the GPT-SoVITS checkout (where api_v2.py is)")
    if not (install_dir / config).is_file():
        raise InputError(f"{install_dir} has no {config}",
                         hint="run GPT-SoVITS's own setup first, or set gpt_sovits.config")
    return install_dir


def python_for(install_dir: Path, configured: str | None) -> str:
    if configured:
        return configured
    for candidate in (install_dir / "runtime" / "python", install_dir / ".venv" / "bin" / "python"):
        if candidate.is_file():
            return str(candidate)
    return sys.executable


def answers(url: str, timeout: float = 1.0) -> bool:
    """Any HTTP answer counts (api_v2 has no health route: ``/`` is a 404 once it is up).

    The standard library's client, so ``health`` and ``gpt-sovits status`` work in any environment."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a loopback server: never a proxy
    try:
        with opener.open(url + "/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP error status is still an answer
    except (OSError, ValueError):
        return False


def _httpx():
    try:
        import httpx
    except ImportError:
        from demod_voice.errors import NotAvailableError, install_hint

        raise NotAvailableError("the GPT-SoVITS engine needs httpx", hint=install_hint("server")) from None
    return httpx


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(cfg, install_dir: Path, port: int, timeout: float, folder: Path | None = None) -> ServerState:
    """Run api_v2.py in the background and wait until it answers (or fail with its log's tail).

    Its PID file and log go to ``folder`` (default ``state_dir(cfg)``), which must be private."""
    import socket

    config = cfg.get("gpt_sovits.config")
    install_dir = check_install(install_dir.expanduser().resolve(), config)
    state = read_state(cfg, folder)
    if state is not None and _alive(state):
        raise InputError(f"GPT-SoVITS is already running (pid {state.pid}, {state.url})",
                         hint="'demod-voice gpt-sovits stop' first")
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise InputError(f"port {port} on 127.0.0.1 is already in use", hint="pass --port with a free port")
    from demod_voice import private_files

    folder = private_files.folder(folder or state_dir(cfg))
    log_path = folder / "api_v2.log"
    with private_files.open_append(log_path) as log:
        proc = subprocess.Popen([python_for(install_dir, cfg.get("gpt_sovits.python")), "api_v2.py",
                                 "-a", "127.0.0.1", "-p", str(port), "-c", config],
                                cwd=install_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    state = ServerState(proc.pid, port, str(install_dir), time.time(), _proc_start(proc.pid))
    private_files.write(folder / "api_v2.pid", json.dumps(state.__dict__).encode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (folder / "api_v2.pid").unlink(missing_ok=True)
            raise EngineError(f"GPT-SoVITS api_v2 exited with code {proc.returncode} while starting; "
                              f"log {log_path}:\n{_log_tail(log_path)}", hint="fix the install, then start again")
        if answers(state.url, timeout=1.0):
            return state
        time.sleep(0.3)
    stop(cfg, folder=folder)
    raise EngineError(f"GPT-SoVITS api_v2 did not answer within {timeout:.0f} s (log {log_path})",
                      hint="raise gpt_sovits.start_timeout_s (loading models takes a while), or read the log")


def stop(cfg, wait: float = 15.0, folder: Path | None = None) -> ServerState | None:
    """Stop the server the PID file (in ``folder``) names (SIGTERM, then SIGKILL); None when none was running."""
    state = read_state(cfg, folder)
    pid_file = (folder or state_dir(cfg)) / "api_v2.pid"
    if state is None or not _alive(state):
        pid_file.unlink(missing_ok=True)
        return None
    os.killpg(state.pid, signal.SIGTERM) if _is_group_leader(state.pid) else os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _alive(state):
        _reap(state.pid)
        time.sleep(0.1)
    if _alive(state):
        os.kill(state.pid, signal.SIGKILL)
        _reap(state.pid)
    pid_file.unlink(missing_ok=True)
    return state


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _reap(pid: int) -> None:
    """Collect the exit of a child of this process (the CLI that started it, in tests), so it is not a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(cfg) -> dict:
    state = read_state(cfg)
    running = state is not None and _alive(state)
    url = server_url(cfg)
    return {"running": running, "pid": state.pid if running else None, "url": url, "answers": answers(url),
            "install_dir": state.install_dir if running else cfg.get("gpt_sovits.install_dir"),
            "log": str(state_dir(cfg) / "api_v2.log")}


# --- the HTTP API ----------------------------------------------------------------------------------

_WEIGHTS: dict[str, tuple[str, str]] = {}
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _lock_for(url: str) -> threading.Lock:
    """One request at a time per server: weights are server-wide state, and api_v2 runs one /tts at a time."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(url, threading.Lock())


def _error(response) -> str:
    """api_v2's error body ``{"message", "Exception"}`` as one line."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict):
        return "; ".join(str(data[k]) for k in ("message", "Exception", "detail") if data.get(k))[:300] or str(data)[:300]
    return str(data)[:300]


@dataclass
class TtsCall:
    """One /tts request, validated."""

    text: str
    text_lang: str
    ref_audio_path: str
    prompt_text: str
    prompt_lang: str
    top_k: int
    top_p: float
    temperature: float
    speed_factor: float
    streaming_mode: bool = False
    gpt_weights: str = ""
    sovits_weights: str = ""

    def body(self) -> dict:
        return {"text": self.text, "text_lang": self.text_lang, "ref_audio_path": self.ref_audio_path,
                "prompt_text": self.prompt_text, "prompt_lang": self.prompt_lang, "top_k": self.top_k,
                "top_p": self.top_p, "temperature": self.temperature, "speed_factor": self.speed_factor,
                "media_type": "wav", "streaming_mode": self.streaming_mode}


def _set_weights(client, url: str, call: TtsCall) -> None:
    wanted = (call.gpt_weights, call.sovits_weights)
    current = _WEIGHTS.get(url, ("", ""))
    for route, path, now in (("/set_gpt_weights", call.gpt_weights, current[0]),
                             ("/set_sovits_weights", call.sovits_weights, current[1])):
        if path and path != now:
            from demod_voice import outbound

            response = outbound.request("GET", url + route, what=f"GPT-SoVITS {route}", timeout_s=60,
                                        max_bytes=64 * 1024, client_=client, params={"weights_path": path})
            if response.status_code != 200:
                raise UpstreamError(f"GPT-SoVITS refused to load its {route.rsplit('_', 2)[-2].upper()} weights "
                                    f"(HTTP {response.status_code})", hint="its own message is in the audit log",
                                    internal=f"{url}{route} {path}: {_error(response)}")
    _WEIGHTS[url] = wanted


def synthesize(url: str, call: TtsCall, timeout: float, max_bytes: int = 64 << 20,
               max_seconds: float = 600.0) -> Iterator[Audio]:
    """Audio from api_v2: one chunk (whole WAV), or chunks as they stream.

    Bounded like every outbound call (``outbound``): the whole exchange ends by ``timeout`` (or the request's
    deadline), at most ``max_bytes`` are read and ``max_seconds`` of audio decoded; the per-server lock is
    waited for only within the same deadline and released when the call ends."""
    httpx = _httpx()

    from demod_voice import outbound

    lock = _lock_for(url)
    started = time.monotonic()
    if not lock.acquire(timeout=max(0.0, outbound._bounds(timeout)[0] - started)):
        raise TimeoutError("GPT-SoVITS is busy with another request past this one's deadline")
    try:
        with outbound.client(timeout) as client:
            _set_weights(client, url, call)
            with client.stream("POST", url + "/tts", json=call.body()) as response:
                if response.status_code != 200:
                    detail = b"".join(outbound.body_pieces(response, 64 * 1024, "GPT-SoVITS"))
                    said = detail[:300].decode("utf-8", "replace")
                    _LOGGER.warning("GPT-SoVITS /tts at %s failed (HTTP %d): %s", url, response.status_code, said)
                    raise UpstreamError(f"GPT-SoVITS /tts failed (HTTP {response.status_code})",
                                        hint="its own message is in the audit log and its log "
                                             "('demod-voice gpt-sovits status' names it)",
                                        internal=f"{url}/tts answered HTTP {response.status_code}: {said}")
                pieces = outbound.body_pieces(response, max_bytes, "GPT-SoVITS audio")
                if not call.streaming_mode:
                    yield outbound.decode(b"".join(pieces), "GPT-SoVITS audio", max_seconds, internal=url)
                    return
                decoded = 0.0
                for chunk in _pcm_chunks(pieces):
                    decoded += chunk.duration
                    if decoded > max_seconds:
                        raise UpstreamError(f"GPT-SoVITS streamed more than {max_seconds:g} s of audio; refused",
                                            internal=url)
                    yield chunk
    except outbound.TooLarge as exc:
        raise UpstreamError(exc.message, hint="router.outbound_max_mb bounds what GPT-SoVITS may send",
                            internal=url) from None
    except (httpx.TimeoutException, outbound.OutboundTimeout):
        raise TimeoutError(f"GPT-SoVITS gave no whole answer within {timeout:.0f} s") from None
    except httpx.HTTPError as exc:
        raise EngineError(f"the GPT-SoVITS server is not running or not answering ({type(exc).__name__})",
                          hint="start it with 'demod-voice gpt-sovits start --install-dir DIR'") from None
    finally:
        lock.release()


def _pcm_chunks(pieces: Iterator[bytes]) -> Iterator[Audio]:
    """A streamed WAV (header, then raw 16-bit PCM as it comes) -> float32 chunks."""
    buffer = b""
    rate = None
    for piece in pieces:
        buffer += piece
        if rate is None:
            if len(buffer) < 44:
                continue
            if buffer[:4] != b"RIFF" or buffer[8:12] != b"WAVE":
                raise UpstreamError("GPT-SoVITS streamed something that is not WAV")
            rate = int.from_bytes(buffer[24:28], "little")
            data_at = buffer.find(b"data")
            if data_at < 0:
                raise UpstreamError("GPT-SoVITS streamed a WAV header without a data chunk")
            buffer = buffer[data_at + 8:]
        usable = len(buffer) - len(buffer) % 2
        if usable:
            yield Audio(np.frombuffer(buffer[:usable], "<i2").astype(np.float32) / 32768.0, rate)
            buffer = buffer[usable:]
    if rate is None:
        raise UpstreamError("GPT-SoVITS closed the stream before sending audio")
