"""The child side of ``health --deep`` (``python -m demod_voice.selftest_child ENGINE WORKDIR``): one engine,
end to end, through the CLI command a user would type. ``demod_voice.selftest`` starts it and reads its result line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from demod_voice.selftest import _RESULT_PREFIX, WORD, _reason, engines

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

        from demod_voice.tiny_models import build_xtts, cached_build, selftest_root

        model_dir = cached_build(selftest_root(cfg), f"xtts-tiny-coqui-{version('coqui-tts')}", build_xtts)
        what = "tiny random-weight checkpoint"
    reference = _speechlike(work / "reference.wav", 3.0, 22050)
    language = xtts.model_languages(xtts.read_model_config(model_dir))
    language = cfg.get("xtts.language") if cfg.get("xtts.language") in language else language[0]
    return ["xtts-zero-shot", str(reference), WORD, "--model-dir", str(model_dir), "--language", language,
            "--seed", "0", "--no-cache", "--output", str(work / "xtts.wav")], f"{what} {model_dir}"


def _rvc_args(cfg, work: Path) -> tuple[list[str], str]:
    from importlib.metadata import version

    from demod_voice.tiny_models import build_rvc, cached_build, selftest_root

    folder = cached_build(selftest_root(cfg), f"rvc-tiny-torch-{version('torch')}", build_rvc)
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
