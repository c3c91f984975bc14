"""``health --deep``: run each installed engine end to end on a tiny input.

Package metadata says an engine is installed; only running it says it works (an
upstream release, such as transformers 5.24 under coqui-tts 0.28, can break
inference while every import still succeeds). Each engine runs in a child
process (``python -m demod_voice.selftest_child ENGINE WORKDIR``) through the same CLI
command a user would type, so:

* ``health`` itself stays free of torch/onnxruntime imports, even with ``--deep``;
* a crash, a hang or a broken import in one engine is that engine's ``broken``
  result, bounded by a timeout, and the others still run.

Models: Piper speaks one word with the default (or first installed) voice; XTTS
uses the installed model, else a tiny random-weight checkpoint built once into
``<cache_dir>/selftest``; RVC always uses a tiny random-weight voice (with the
configured HuBERT/RMVPE weights when both are set), because a user's voices are
their own. Results are ``ok``, ``broken`` (with the reason) or ``skipped``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

#: Engines checked end to end, in report order, with the longest a run may take (seconds).
ENGINES = {"piper": 120.0, "xtts": 900.0, "rvc": 600.0}
#: What the word-long runs say.
WORD = "Hello."
_RESULT_PREFIX = "selftest-result: "


@dataclass
class Outcome:
    engine: str
    status: str  # ok | broken | skipped
    detail: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --- the parent side (inside `health`): no heavy imports -----------------------------------------------------


def run_engine(engine: str, global_args: list[str], timeout: float | None = None) -> Outcome:
    """Run one engine's self-test in a child process and turn what it says into an Outcome."""
    timeout = engines()[engine] if timeout is None else timeout
    env = dict(os.environ, DEMOD_VOICE_CACHE__ENABLED="false")  # a cached answer would test nothing
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"demod-voice-selftest-{engine}-") as work:
        cmd = [sys.executable, "-m", "demod_voice.selftest_child", engine, work, *global_args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Outcome(engine, "broken", f"no result within {timeout:.0f} s", time.perf_counter() - started)
    seconds = time.perf_counter() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_PREFIX):
            data = json.loads(line.removeprefix(_RESULT_PREFIX))
            return Outcome(engine, data["status"], data["detail"], seconds)
    return Outcome(engine, "broken", _reason(proc.stderr, f"the self-test exited with {proc.returncode}"), seconds)


def engines() -> dict[str, float]:
    """Every engine with a self-test: the ones above, then registry engines that declare ``selftest_args``."""
    from demod_voice.synthesis import registry

    found = dict(ENGINES)
    for name in registry.ENGINES:
        timeout = getattr(registry.module(name), "SELFTEST_TIMEOUT", None)
        if timeout and name not in found:
            found[name] = float(timeout)
    return found


def _reason(stderr: str, fallback: str) -> str:
    """The CLI's one ``error: ...`` line, else the last line a crash printed (e.g. an exception)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1].removeprefix("error: ")
    return lines[-1] if lines else fallback
