"""Plain helpers for tests (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
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
    return subprocess.run([sys.executable, "-m", "demod_voice", *map(str, args)], input=input,
                          capture_output=True, env=cli_env(env), timeout=timeout, cwd=cwd)


def word_error_rate(reference: str, hypothesis: str) -> float:
    import re

    import jiwer

    def clean(s: str) -> str:
        return re.sub(r"[^a-z0-9' ]+", " ", s.lower()).strip()

    return jiwer.wer(clean(reference), clean(hypothesis))
