"""Plain helpers for tests (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def run_cli(*args: str, input: bytes | str | None = None, env: dict | None = None, timeout: float = 600,
            cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``demod-voice ARGS`` as a real subprocess (``python -m demod_voice``)."""
    if isinstance(input, str):
        input = input.encode()
    # No input: an empty standard input, never the test runner's (piper-infer reads a piped stdin).
    stdin = subprocess.DEVNULL if input is None else None
    return subprocess.run([sys.executable, "-m", "demod_voice", *map(str, args)], input=input, stdin=stdin,
                          capture_output=True, env=cli_env(env), timeout=timeout, cwd=cwd)


def word_error_rate(reference: str, hypothesis: str) -> float:
    import re

    import jiwer

    def clean(s: str) -> str:
        return re.sub(r"[^a-z0-9' ]+", " ", s.lower()).strip()

    return jiwer.wer(clean(reference), clean(hypothesis))


def run_cli_on_tty(args: list[str], *, tty: bool = True, stdin: bytes | None = None, env: dict | None = None,
                  timeout: float = 300) -> tuple[int, bytes]:
    """Run the CLI with stderr on a pseudo-terminal (or a pipe), bars allowed at once; return (code, stderr)."""
    code = ("import sys\nfrom demod_voice import cli, progress\nprogress.DELAY_S = 0\n"
            "raise SystemExit(cli.main(sys.argv[1:]))\n")
    command = [sys.executable, "-c", code, *map(str, args)]
    if not tty:
        proc = subprocess.run(command, input=stdin or b"", capture_output=True, env=cli_env(env), timeout=timeout,
                              cwd=REPO)
        return proc.returncode, proc.stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100x24 terminal
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=follower,
                                env=cli_env(env), cwd=REPO)
        os.close(follower)
        proc.stdin.write(stdin or b"")
        proc.stdin.close()
        seen = b""
        while True:
            try:
                block = os.read(leader, 4096)
            except OSError:  # the terminal closes with the last writer (EIO on Linux)
                break
            if not block:
                break
            seen += block
        return proc.wait(timeout=timeout), seen
    finally:
        os.close(leader)
