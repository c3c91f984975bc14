"""A child environment without the optional heavy packages (what `make demo` installs: no torch).

``hidden_env(tmp_path)`` writes a ``sitecustomize`` that wraps the path finder so that it does not find torch
(and the other packages of the heavy extras) in that child only: ``import torch`` raises ``ModuleNotFoundError``
and ``importlib.util.find_spec("torch")`` is None, as where they are not installed, so the genuine code path
for a missing package runs.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli_env

#: Top-level modules of the extras the demo environment lacks (xtts, rvc, stt, ray, tinygrad, train).
HIDDEN = ("torch", "torchaudio", "torchcodec", "torchcrepe", "TTS", "transformers", "faiss", "pyworld",
          "faster_whisper", "ctranslate2", "ray", "tinygrad", "lightning", "parselmouth", "coqpit")

_BLOCKER = '''
import sys


class _Hide:
    """Stands in for every path finder and does not find the hidden packages, as if they were not installed."""

    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            return None
        return self.inner.find_spec(name, path, target)

    def __getattr__(self, name):
        return getattr(self.inner, name)


sys.meta_path[:] = [_Hide(f) if getattr(f, "__name__", "") == "PathFinder" else f for f in sys.meta_path]
'''


def hidden_env(folder: Path, hidden: tuple[str, ...] = HIDDEN, extra: dict | None = None) -> dict:
    """An environment for ``run_cli(..., env=...)`` whose interpreter cannot import ``hidden``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_BLOCKER.format(hidden=tuple(hidden)), encoding="utf-8")
    env = cli_env(extra)
    env["PYTHONPATH"] = f"{folder}:{env['PYTHONPATH']}"
    return env
