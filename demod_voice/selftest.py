"""``health --deep``: run each installed engine end to end on a tiny input.

Package metadata says an engine is installed; only running it says it works (an
upstream release, such as transformers 5.24 under coqui-tts 0.28, can break
inference while every import still succeeds). Each engine runs in a child
process (``python -m demod_voice.selftest ENGINE WORKDIR``) through the same CLI
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
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
        cmd = [sys.executable, "-m", "demod_voice.selftest", engine, work, *global_args]
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


# --- the child side: one engine, through the CLI --------------------------------------------------------------


def _speechlike(path: Path, seconds: float, rate: int) -> Path:
    """A voiced, vibrato-modulated harmonic signal: enough for conditioning and pitch tracking, no assets needed."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    f0 = 140.0 + 25.0 * np.sin(2 * np.pi * 3.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t - np.pi / 2) ** 2
    sf.write(path, (0.2 * wave * envelope).astype(np.float32), rate, subtype="PCM_16")
    return path


def _cached_build(root: Path, name: str, build) -> Path:
    """Build into a temp folder beside ``root/name`` and rename it into place, so a half-built model never exists."""
    target = root / name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build(scratch / "m")
        os.replace(scratch / "m", target)
    except OSError:
        if not target.is_dir():  # another self-test that won the race is fine
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _selftest_root(cfg) -> Path:
    return Path(cfg.cache_dir) / "selftest"


def _piper_args(cfg, work: Path) -> tuple[list[str] | None, str]:
    from demod_voice import catalog
    from demod_voice.errors import DemodError

    name = cfg.get("piper.default_voice")
    try:
        catalog.resolve_piper_model(name, cfg)
    except DemodError:
        voices = catalog.list_voices(cfg, engine="piper")
        if not voices:
            return None, "no Piper voice installed ('demod-voice voices list')"
        name = voices[0].name
    return ["piper-infer", name, WORD, "--output", str(work / "piper.wav")], f"voice {name}"


def _xtts_args(cfg, work: Path) -> tuple[list[str], str]:
    from demod_voice.engines import xtts
    from demod_voice.errors import ModelNotFoundError

    try:
        model_dir, what = xtts.resolve_model_dir(cfg), "installed model"
    except ModelNotFoundError:
        from importlib.metadata import version

        from demod_voice.tiny_models import build_xtts

        model_dir = _cached_build(_selftest_root(cfg), f"xtts-tiny-coqui-{version('coqui-tts')}", build_xtts)
        what = "tiny random-weight checkpoint"
    reference = _speechlike(work / "reference.wav", 3.0, 22050)
    language = xtts.model_languages(xtts.read_model_config(model_dir))
    language = cfg.get("xtts.language") if cfg.get("xtts.language") in language else language[0]
    return ["xtts-zero-shot", str(reference), WORD, "--model-dir", str(model_dir), "--language", language,
            "--seed", "0", "--no-cache", "--output", str(work / "xtts.wav")], f"{what} {model_dir}"


def _rvc_args(cfg, work: Path) -> tuple[list[str], str]:
    from importlib.metadata import version

    from demod_voice.tiny_models import build_rvc

    folder = _cached_build(_selftest_root(cfg), f"rvc-tiny-torch-{version('torch')}", build_rvc)
    hubert, rmvpe = cfg.get("rvc.hubert"), cfg.get("rvc.rmvpe")
    what = "tiny random-weight voice"
    if not (hubert and rmvpe and Path(hubert).exists() and Path(rmvpe).exists()):
        hubert, rmvpe = folder / "hubert", folder / "rmvpe.pt"
        what += " and auxiliary weights"
    source = _speechlike(work / "input.wav", 1.0, 16000)
    return ["rvc-convert", str(source), "--model", str(folder / "voice.pth"), "--hubert", str(hubert),
            "--rmvpe", str(rmvpe), "--output", str(work / "rvc.wav")], what


_ARGS = {"piper": _piper_args, "xtts": _xtts_args, "rvc": _rvc_args}


def _check_audio(path: Path) -> str:
    import numpy as np
    import soundfile as sf

    data, rate = sf.read(path, dtype="float32")
    if data.size == 0 or not np.isfinite(data).all() or not np.abs(data).max() > 0:
        raise ValueError(f"{path.name} holds no usable audio ({data.size} samples)")
    return f"{len(data) / rate:.2f} s of audio at {rate} Hz"


def self_test(engine: str, work: Path, global_args: list[str]) -> tuple[str, str]:
    """(status, detail) for one engine; runs in the child process."""
    import contextlib
    import io

    from demod_voice import config
    from demod_voice.cli import main
    from demod_voice.errors import DemodError

    config_file = global_args[global_args.index("--config") + 1] if "--config" in global_args else None
    try:
        cfg = config.load(config_file)
        if engine in _ARGS:
            args, what = _ARGS[engine](cfg, work)
        else:  # a registry engine's own self-test command, given a speech-like reference
            from demod_voice.synthesis import registry

            reference = _speechlike(work / "reference.wav", 3.0, 24000)
            args, what = registry.module(engine).selftest_args(cfg, work, reference)
    except DemodError as exc:
        return "broken", f"{exc.message}"
    if args is None:
        return "skipped", what
    started = time.perf_counter()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["-q", *global_args, *args])
    if code != 0:
        return "broken", _reason(stderr.getvalue(), f"{args[0]} exited with {code}")
    output = Path(args[args.index("--output") + 1])
    return "ok", f"{what}: {_check_audio(output)} in {time.perf_counter() - started:.1f} s"


def _child(argv: list[str]) -> int:
    engine, work, global_args = argv[0], Path(argv[1]), argv[2:]
    if engine not in engines():
        print(f"error: unknown engine {engine!r}; choose from {', '.join(engines())}", file=sys.stderr)
        return 2
    try:
        status, detail = self_test(engine, work, global_args)
    except Exception as exc:  # the point of a self-test: any failure is reported with its cause, not raised
        status, detail = "broken", f"{type(exc).__name__}: {exc}"
    print(_RESULT_PREFIX + json.dumps({"status": status, "detail": detail}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1:]))
