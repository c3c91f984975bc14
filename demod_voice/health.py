"""Environment report: what works on this machine and what does not.

Built from package metadata and cheap probes so it runs in well under a
second; torch is imported only when CUDA is explicitly probed. ``deep=True``
also runs every installed engine end to end (demod_voice.selftest, in child
processes, so this process still imports no engine library).
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from demod_voice import __version__
from demod_voice.errors import install_hint

#: Capability -> distributions it needs (metadata names).
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "piper": ("piper-tts", "onnxruntime"),
    "xtts": ("coqui-tts", "torch", "torchaudio"),
    "rvc": ("torch", "transformers", "faiss-cpu", "pyworld", "torchcrepe"),
    "server": ("fastapi", "uvicorn"),
    "ray": ("ray",),
    "tinygrad": ("tinygrad",),
    "transcribe": ("faster-whisper",),
}
#: The extra that installs a capability, where the names differ.
EXTRA_FOR = {"transcribe": "stt"}
#: Capabilities whose failure makes ``health`` exit 1 unless asked otherwise.
DEFAULT_REQUIRED = ("config", "piper")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = False
    data: dict = field(default_factory=dict)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


#: Distribution -> the module it installs, where the names differ (a package counts only when it imports).
MODULE_OF = {"piper-tts": "piper", "coqui-tts": "TTS", "faiss-cpu": "faiss", "faster-whisper": "faster_whisper"}


def check_capability(name: str) -> Check:
    from demod_voice.needs import found

    versions = {dist: _version(dist) if found(MODULE_OF.get(dist, dist)) else None for dist in CAPABILITIES[name]}
    missing = [d for d, v in versions.items() if v is None]
    if missing:
        return Check(name, False, f"missing {', '.join(missing)} ({install_hint(EXTRA_FOR.get(name, name))})", data=versions)
    return Check(name, True, ", ".join(f"{d} {v}" for d, v in versions.items()), data=versions)


def check_onnxruntime_providers() -> Check:
    if importlib.util.find_spec("onnxruntime") is None:
        return Check("onnxruntime-gpu", False, "onnxruntime not installed")
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in providers
    return Check("onnxruntime-gpu", has_cuda, ", ".join(providers), data={"providers": providers})


def check_torch_cuda() -> Check:
    if importlib.util.find_spec("torch") is None:
        return Check("torch-cuda", False, "torch not installed")
    import torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return Check("torch-cuda", True, f"CUDA {torch.version.cuda}: {', '.join(names)}", data={"devices": names})
    return Check("torch-cuda", False, f"torch {torch.__version__}: no CUDA device", data={})


def check_tinygrad_devices() -> Check:
    """Devices tinygrad can open (the tinygrad Piper backend runs on the first one)."""
    if importlib.util.find_spec("tinygrad") is None:
        return Check("tinygrad-devices", False, "tinygrad not installed")
    from demod_voice.engines.piper.tinygrad_backend import available_devices

    try:
        devices = available_devices()
    except Exception as exc:  # a broken runtime must not hide the rest of the report
        return Check("tinygrad-devices", False, f"{type(exc).__name__}: {exc}")
    if not devices:
        return Check("tinygrad-devices", False, "none usable (its CPU device needs the 'clang' compiler)",
                     data={"devices": []})
    return Check("tinygrad-devices", True, ", ".join(devices), data={"devices": devices})


def check_ffmpeg() -> Check:
    exe = shutil.which("ffmpeg")
    if not exe:
        return Check("ffmpeg", False, "not found (optional: demod-voice encodes and decodes every format with PyAV's "
                                      "bundled libraries; only torchaudio.load/torchcodec would use it)")
    try:
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        first = exe
    return Check("ffmpeg", True, first)


def check_config(cfg_loader) -> tuple[Check, object | None]:
    from demod_voice.errors import ConfigError

    try:
        cfg = cfg_loader()
    except ConfigError as exc:
        return Check("config", False, str(exc), required=True), None
    files = ", ".join(cfg.files) or "defaults only"
    return Check("config", True, files, required=True), cfg


def check_voices(cfg) -> Check:
    from demod_voice.catalog import list_voices

    try:
        voices = list_voices(cfg)
    except Exception as exc:  # a broken lister must not hide the rest of the report
        return Check("voices", False, f"{type(exc).__name__}: {exc}")
    by_engine: dict[str, int] = {}
    for voice in voices:
        by_engine[voice.engine] = by_engine.get(voice.engine, 0) + 1
    detail = ", ".join(f"{n} {e}" for e, n in by_engine.items()) or "none found"
    return Check("voices", bool(voices), detail, data={"voices": [v.name for v in voices]})


#: Engines ``deep`` runs end to end, and the capability each needs installed.
DEEP_ENGINES = {"piper": "piper", "xtts": "xtts", "rvc": "rvc"}


def check_deep(capabilities: dict[str, Check], global_args: list[str]) -> list[Check]:
    """``<engine>-run`` checks: an installed engine that fails to speak one word is ``broken`` and required."""
    from demod_voice.selftest import run_engine

    checks = []
    for engine, capability in DEEP_ENGINES.items():
        name = f"{engine}-run"
        if not capabilities[capability].ok:
            checks.append(Check(name, False, "skipped: not installed", data={"status": "skipped"}))
            continue
        from demod_voice import progress

        progress.note(f"health --deep: running the {engine} self-test (up to {engines_timeout(engine):.0f} s)")
        outcome = run_engine(engine, global_args)
        checks.append(_deep_check(name, outcome))
    return checks + _check_deep_registered(global_args) + [check_parity()]


def check_parity() -> Check:
    """The engines this version was tested equal to their reference implementations (``tests/parity``)."""
    from demod_voice import parity

    return Check("parity", True, parity.line(), data={e: {"reference": r, "tests": list(t)}
                                                      for e, (r, t) in parity.RECORD.items()})


def engines_timeout(engine: str) -> float:
    from demod_voice.selftest import engines

    return engines().get(engine, 0.0)


def _deep_check(name: str, outcome) -> Check:
    """A self-test result; one that ran on random weights says so (it proves the code, not the voice)."""
    detail = outcome.detail if outcome.ok else f"{outcome.status}: {outcome.detail}"
    random_weights = "random-weight" in outcome.detail
    if outcome.ok and random_weights:
        detail = "code works (self-test on random weights, not the real model): " + detail
    return Check(name, outcome.ok, detail, required=outcome.status == "broken",
                 data={"status": outcome.status, "seconds": round(outcome.seconds, 1),
                       "random_weights": random_weights})


def _check_deep_registered(global_args: list[str]) -> list[Check]:
    """``<engine>-run`` for registry engines that declare a self-test (``SELFTEST_TIMEOUT``, ``selftest_args``)."""
    from demod_voice.selftest import run_engine
    from demod_voice.synthesis import registry

    checks = []
    for engine in registry.ENGINES:
        module = registry.module(engine)
        if engine in DEEP_ENGINES or not getattr(module, "SELFTEST_TIMEOUT", None):
            continue
        installed, why = module.available(None)
        if not installed:
            checks.append(Check(f"{engine}-run", False, f"skipped: {why}", data={"status": "skipped"}))
            continue
        from demod_voice import progress

        progress.note(f"health --deep: running the {engine} self-test (up to {engines_timeout(engine):.0f} s)")
        checks.append(_deep_check(f"{engine}-run", run_engine(engine, global_args)))
    return checks


#: Engines with real weights to fetch: engine -> its capability row.
WEIGHTS = {"xtts": "xtts", "rvc": "rvc", "styletts2": "styletts2"}


def check_weights(cfg) -> list[Check]:
    """``<engine>-weights``: the real weights each engine speaks with, or which are missing and the
    ``demod-voice models pull ...`` line that fetches them (a self-test on random weights proves only the code)."""
    from demod_voice.synthesis import registry

    checks = []
    for engine in WEIGHTS:
        module = registry.module(engine)
        installed, why = module.available(None)
        if not installed:
            checks.append(Check(f"{engine}-weights", False, "not checked: packages missing", data={"status": "skipped"}))
            continue
        ok, why = module.available(cfg)
        checks.append(Check(f"{engine}-weights", ok, "real weights in place" if ok else why,
                            data={"status": "present" if ok else "missing"}))
    return checks


def check_stt(cfg) -> Check:
    """The speech-to-text engine and whether its configured Whisper model is in place (nothing is loaded)."""
    from demod_voice.stt import stt_status

    status = stt_status(cfg)
    engine = f"faster-whisper {_version('faster-whisper')}" if status["installed"] else \
        "faster-whisper missing (" + install_hint("stt") + ")"
    model = f"model {status['model']}: " + (status.get("model_path", "") if status["model_installed"]
                                            else status.get("problem", "not installed"))
    return Check("stt", status["installed"] and status["model_installed"], f"{engine}; {model}", data=status)


def check_engines(cfg) -> list[Check]:
    """Checks the registry's engines declare (``health(cfg) -> (ok, detail, data)``): servers they talk to."""
    from demod_voice.errors import DemodError
    from demod_voice.synthesis import registry

    try:
        engines = {name: registry.get(name, cfg) for name in registry.names(cfg)}
    except DemodError as exc:  # a bad router.remotes entry
        return [Check("engines", False, exc.message)]
    checks = []
    for name, engine in engines.items():
        probe = getattr(engine, "health", None)
        if probe is not None:
            ok, detail, data = probe(cfg)
            checks.append(Check(name, ok, detail, data=data))
    return checks


def run_checks(cfg_loader, require: tuple[str, ...] = (), probe_cuda: bool = False, deep: bool = False,
               global_args: tuple[str, ...] = ()) -> dict:
    """Run every check; ``require`` names capabilities whose failure is fatal.

    ``deep`` also runs each installed engine (``global_args``, e.g. ``--config F --cpu``, go to its CLI run).
    """
    checks: list[Check] = []
    config_check, cfg = check_config(cfg_loader)
    checks.append(config_check)
    capabilities = {name: check_capability(name) for name in CAPABILITIES}
    checks.extend(capabilities.values())
    gpu = check_onnxruntime_providers()
    checks.append(gpu)
    if probe_cuda:
        checks.append(check_torch_cuda())
    checks.append(check_tinygrad_devices())
    checks.append(check_ffmpeg())
    if cfg is not None:
        checks.append(check_voices(cfg))
        checks.append(check_stt(cfg))
        checks.extend(check_weights(cfg))
        checks.extend(check_engines(cfg))
    if deep and cfg is not None:
        checks.extend(check_deep(capabilities, list(global_args)))
    wanted = set(DEFAULT_REQUIRED) | set(require)
    for check in checks:
        if check.name in wanted or (check.name in ("onnxruntime-gpu", "torch-cuda") and "gpu" in wanted):
            check.required = True
    if "gpu" in wanted and not any(c.ok for c in checks if c.name in ("onnxruntime-gpu", "torch-cuda")):
        for c in checks:
            if c.name in ("onnxruntime-gpu", "torch-cuda"):
                c.required = True
    elif "gpu" in wanted:  # one working GPU path is enough
        for c in checks:
            if c.name in ("onnxruntime-gpu", "torch-cuda") and not c.ok:
                c.required = False
    healthy = all(c.ok for c in checks if c.required)
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "healthy": healthy,
        "checks": [asdict(c) for c in checks],
    }


def format_table(report: dict) -> str:
    lines = [f"demod-voice {report['version']}  Python {report['python']}  {report['platform']}", ""]
    width = max(len(c["name"]) for c in report["checks"])
    for c in report["checks"]:
        mark = "ok  " if c["ok"] else ("FAIL" if c["required"] else "--  ")
        lines.append(f"{mark} {c['name']:<{width}}  {c['detail']}")
    lines.append("")
    lines.append("healthy" if report["healthy"] else "unhealthy: a required capability is broken (FAIL above)")
    return "\n".join(lines)
